package io.directmap.cli;

import io.directmap.device.DeviceAccess;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.OpenFile;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.sys.Units;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.function.LongConsumer;
import java.util.zip.CRC32C;

/**
 * The result of mapping one file range into one device: what went which way, how fast, and whether
 * the bytes match. decisionSeconds is NaN when the file system took the mapping back before its
 * decision time could be read (the segments are then the ones the read kept).
 */
record MapReport(Path file, String fs, long fileSize, String device, long start, long end, long directBytes,
                 long fallbackBytes, double decisionSeconds, double dmaSeconds, List<Segment> segments,
                 long deviceCrc, long fileCrc, boolean verified) {

    /** mmap, access, checksum device memory against the file as the file system returns it, unmap. */
    static MapReport run(FsStack mm, SoftwareDevice device, Path path, Long start, Long end, Set<MapFlag> flags,
                         MapMode mode, boolean verify, LongConsumer progress) throws IOException {
        // A writable mapping needs the file opened for writing: it holds the write lease.
        try (Vma vma = flags.contains(MapFlag.WRITE) ? mm.mmapForWrite(path) : mm.mmap(path)) {
            long s = start == null ? 0 : start;
            long e = end == null ? vma.length() : end;
            try (DeviceAccess a = device.access(vma, s, e, flags, mode, progress)) {
                long deviceCrc = crc(a.memory().asByteBuffer());
                long fileCrc = verify ? fileCrc(path, s, e) : -1;
                return new MapReport(vma.file().path(), OpenFile.of(vma).fsType(), vma.length(), device.name(), s, e,
                        a.directBytes(), a.fallbackBytes(), decisionSeconds(a), a.dmaNanos() / 1e9,
                        a.segments(), deviceCrc, fileCrc, verify);
            }
        }
    }

    /** The file system's decision time for the access's mapping, or NaN when it took the mapping back first. */
    static double decisionSeconds(DeviceAccess a) {
        OptionalLong n = a.decisionNanos();
        return n.isPresent() ? n.getAsLong() / 1e9 : Double.NaN;
    }

    boolean decisionKnown() { return !Double.isNaN(decisionSeconds); }

    private static long crc(ByteBuffer b) {
        CRC32C c = new CRC32C();
        c.update(b);
        return c.getValue();
    }

    /** CRC32C of [start, end) read through the file system (a plain read(2), the reference). */
    static long fileCrc(Path path, long start, long end) throws IOException {
        CRC32C c = new CRC32C();
        ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long at = start;
            while (at < end) {
                buf.clear().limit((int) Math.min(buf.capacity(), end - at));
                int n = ch.read(buf, at);
                if (n < 0) break;
                buf.flip();
                c.update(buf);
                at += n;
            }
        }
        return c.getValue();
    }

    boolean checksumOk() { return !verified || deviceCrc == fileCrc; }
    long bytes() { return end - start; }

    void print(PrintWriter out) {
        out.printf("file     %s (%s, %s)%n", file, fs, Units.bytes(fileSize));
        out.printf("range    [%d, %d) to %s%n", start, end, device);
        out.println();
        segmentTable(segments).print(out);
        out.println();
        long moved = directBytes + fallbackBytes;
        out.printf("moved    %s to %s: %s direct (%s), %s through the page cache; 0 B from the device%n",
                Units.bytes(bytes()), device, Units.bytes(directBytes), percent(directBytes, moved), Units.bytes(fallbackBytes));
        if (decisionKnown()) {
            out.printf("time     decision %.3f ms, DMA %.1f ms, %s%n", decisionSeconds * 1e3, dmaSeconds * 1e3,
                    Units.rate(bytes(), dmaSeconds));
        } else {
            out.printf("time     decision unknown (the file system took the mapping back), DMA %.1f ms, %s%n",
                    dmaSeconds * 1e3, Units.rate(bytes(), dmaSeconds));
        }
        if (verified) {
            out.printf("checksum crc32c %08x in device memory, %08x read from the file: %s%n", deviceCrc, fileCrc,
                    checksumOk() ? "match" : "MISMATCH");
        } else {
            out.printf("checksum crc32c %08x in device memory (not compared: --no-verify)%n", deviceCrc);
        }
    }

    static Table segmentTable(List<Segment> segments) {
        Table t = new Table("START", "END", "PATH", "LENGTH", "WHERE / WHY");
        for (Segment s : segments) {
            switch (s) {
                case Segment.Direct d -> t.row(s.start(), s.end(), "direct", Units.bytes(s.length()),
                        String.format("%s @ %d (bus 0x%x) via %s", d.peer().node(), d.deviceOffset(), d.busAddress(), d.route()));
                case Segment.Fallback f -> t.row(s.start(), s.end(), "fallback", Units.bytes(s.length()),
                        f.refusal().reason().refuser().label() + ": " + f.refusal().reason().summary()
                                + (f.refusal().detail().isEmpty() ? "" : "; " + f.refusal().detail()));
            }
        }
        return t;
    }

    /** part as a percentage of whole with one decimal ("12.5%"), or "-" when whole is 0; dmap write uses it too. */
    static String percent(long part, long whole) {
        return whole == 0 ? "-" : String.format(Locale.ROOT, "%.1f%%", 100.0 * part / whole);
    }

    /**
     * The fields a report of dmap map and one of dmap write both begin their JSON with, in this
     * order: file, fs, file_size, device, start, end, bytes, direct_bytes, fallback_bytes. Each
     * report puts its own fields after them.
     */
    static Map<String, Object> commonJson(Path file, String fs, long fileSize, String device, long start, long end,
                                          long directBytes, long fallbackBytes) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("file", file.toString());
        m.put("fs", fs);
        m.put("file_size", fileSize);
        m.put("device", device);
        m.put("start", start);
        m.put("end", end);
        m.put("bytes", end - start);
        m.put("direct_bytes", directBytes);
        m.put("fallback_bytes", fallbackBytes);
        return m;
    }

    Map<String, Object> toJson() {
        Map<String, Object> m = commonJson(file, fs, fileSize, device, start, end, directBytes, fallbackBytes);
        m.put("bytes_to_device", bytes());
        m.put("bytes_from_device", 0L);
        m.put("seconds", dmaSeconds);
        m.put("decision_seconds", decisionKnown() ? decisionSeconds : null);
        m.put("gib_per_s", dmaSeconds > 0 ? bytes() / dmaSeconds / (1L << 30) : null);
        m.put("checksum_device", String.format("%08x", deviceCrc));
        m.put("checksum_file", verified ? String.format("%08x", fileCrc) : null);
        m.put("checksum_ok", verified ? checksumOk() : null);
        m.put("segments", segmentsJson(segments));
        return m;
    }

    static List<Object> segmentsJson(List<Segment> segments) {
        List<Object> out = new ArrayList<>();
        for (Segment s : segments) {
            Map<String, Object> j = new LinkedHashMap<>();
            j.put("start", s.start());
            j.put("end", s.end());
            j.put("length", s.length());
            switch (s) {
                case Segment.Direct d -> {
                    j.put("path", "direct");
                    j.put("block_device", d.peer().node().toString());
                    j.put("device_offset", d.deviceOffset());
                    j.put("bus_address", d.busAddress());
                    j.put("route", d.route());
                }
                case Segment.Fallback f -> {
                    j.put("path", "fallback");
                    j.put("refused_by", f.refusal().reason().refuser().label());
                    j.put("reason", f.refusal().reason().code());
                    j.put("summary", f.refusal().reason().summary());
                    j.put("detail", f.refusal().detail());
                }
            }
            out.add(j);
        }
        return out;
    }
}
