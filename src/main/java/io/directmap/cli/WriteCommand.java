package io.directmap.cli;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.OpenFile;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.sys.FileHandle;
import io.directmap.sys.PageCacheAdvice;
import io.directmap.sys.Process;
import io.directmap.sys.Units;
import java.io.IOException;
import java.io.PrintWriter;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.zip.CRC32C;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "write", description = {
        "Write SRC's bytes into FILE through a device, with DEVICE_MAP_FLAG_WRITE:",
        "straight to the block device where the file system and the block device agree,",
        "through the file system elsewhere (cached or dirty pages always), saying why;",
        "then read FILE back through the file system, its cache dropped, and compare."})
final class WriteCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin Common common;

    @Parameters(paramLabel = "FILE", description = "The file to write into (it must exist).")
    Path file;

    @Option(names = "--from", paramLabel = "SRC", required = true, description = "The file whose bytes are written.")
    Path from;

    @Option(names = "--range", paramLabel = "START:END",
            description = "Bytes of FILE to write (default: from 0, as many as SRC has); SRC's first END-START bytes go there."
                    + " START must be a multiple of the page size, END too unless it is at or past FILE's end.")
    Range range;

    @Option(names = "--sync", description = "Make the bytes durable before reporting (flush the block devices, fdatasync).")
    boolean sync;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        if (!Files.isRegularFile(from)) throw new InvalidRequestException(from + ": no such regular file; give --from an existing file");
        if (!Files.isRegularFile(file)) throw new InvalidRequestException(file + ": no such regular file; dmap write writes into an existing file");
        long srcSize = Files.size(from);
        long start = range == null || range.start() == null ? 0 : range.start();
        long end = range == null || range.end() == null ? start + srcSize : range.end();
        long length = end - start;
        if (length <= 0) throw new InvalidRequestException(file + ": range " + start + ":" + end + " is empty; give START < END");
        if (length > srcSize) {
            throw new InvalidRequestException(file + ": range " + Units.range(start, end) + " needs " + length + " bytes and "
                    + from + " has " + srcSize + "; give a shorter range or a longer SRC");
        }
        long page = Process.PAGE_SIZE, fileSize = Files.size(file);
        if (start % page != 0 || (end % page != 0 && end < fileSize)) {
            throw new InvalidRequestException(file + ": range " + Units.range(start, end) + " is not whole pages (" + page
                    + " bytes) and ends before the end of the file (" + fileSize + " bytes); devices write whole pages");
        }
        try (FsStack mm = common.addressSpace(); SoftwareDevice dev = common.device(mm);
             DeviceMemory.Buffer src = dev.allocate(file + ": write " + Units.range(start, end), roundUp(length, page),
                     "write a smaller range")) {
            MemorySegment bytes = src.segment().asSlice(0, length);
            load(from, bytes);
            long sourceCrc = crc(bytes);
            long t0 = System.nanoTime();
            Binding.Write w;
            String fs;
            try (Vma vma = mm.mmapForWrite(file);
                 Binding b = dev.bind(vma, start, roundUp(end, page), Math.max(8L << 20, Binding.smallestWindow(roundUp(end, page) - start)),
                         Set.of(MapFlag.WRITE), MapMode.MIXED);
                 Progress p = new Progress(spec.commandLine().getErr(), length, !common.json)) {
                fs = OpenFile.of(vma).fsType();
                w = b.write(start, bytes, sync, p);
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            long fileCrc = fileCrcUncached(file, start, end);
            Report r = new Report(file, fs, Files.size(file), dev.name(), start, end, w, seconds, sourceCrc, fileCrc, sync);
            if (common.json) out.print(Json.write(r.toJson())); else r.print(out);
            out.flush();
            return r.checksumOk() ? Dmap.OK : Dmap.FAILED;
        }
    }

    /** SRC's first bytes.byteSize() bytes into device memory. */
    private static void load(Path from, MemorySegment bytes) throws IOException {
        ByteBuffer buf = bytes.asByteBuffer();
        try (FileChannel ch = FileChannel.open(from, StandardOpenOption.READ)) {
            while (buf.hasRemaining()) {
                if (ch.read(buf, buf.position()) < 0) throw new IOException(from + " ended early (it shrank while read)");
            }
        }
    }

    /** CRC32C of [start, end) of file read through the file system after writing back and dropping its cache. */
    private static long fileCrcUncached(Path file, long start, long end) throws IOException {
        try (FileHandle h = FileHandle.openRead(file)) {
            h.fsync();
            PageCacheAdvice.dropCache(h, 0, 0);
        }
        return MapReport.fileCrc(file, start, end);
    }

    private static long crc(MemorySegment m) {
        CRC32C c = new CRC32C();
        c.update(m.asByteBuffer());
        return c.getValue();
    }

    private static long roundUp(long v, long to) {
        return (v + to - 1) / to * to;
    }

    /** What one dmap write did: which way each range went, how fast, and whether the file now reads back as SRC. */
    record Report(Path file, String fs, long fileSize, String device, long start, long end, Binding.Write write, double seconds,
                  long sourceCrc, long fileCrc, boolean durable) {
        boolean checksumOk() { return sourceCrc == fileCrc; }
        long bytes() { return end - start; }

        void print(PrintWriter out) {
            out.printf("file     %s (%s, %s)%n", file, fs, Units.bytes(fileSize));
            out.printf("range    [%d, %d) from %s%n", start, end, device);
            out.println();
            MapReport.segmentTable(write.segments()).print(out);
            out.println();
            out.printf("wrote    %s from %s: %s direct (%s), %s through the file system%s%n", Units.bytes(bytes()), device,
                    Units.bytes(write.directBytes()), MapReport.percent(write.directBytes(), bytes()), Units.bytes(write.fallbackBytes()),
                    durable ? "; durable (block devices flushed, file synced)" : "");
            out.printf("time     %.1f ms, %s%n", seconds * 1e3, Units.rate(bytes(), seconds));
            out.printf("checksum crc32c %08x of the source, %08x read back from the file: %s%n", sourceCrc, fileCrc,
                    checksumOk() ? "match" : "MISMATCH");
        }

        Map<String, Object> toJson() {
            Map<String, Object> m = MapReport.commonJson(file, fs, fileSize, device, start, end,
                    write.directBytes(), write.fallbackBytes());
            m.put("durable", durable);
            m.put("seconds", seconds);
            m.put("gib_per_s", seconds > 0 ? bytes() / seconds / (1L << 30) : null);
            m.put("checksum_source", String.format("%08x", sourceCrc));
            m.put("checksum_file", String.format("%08x", fileCrc));
            m.put("checksum_ok", checksumOk());
            List<Segment> segments = write.segments();
            m.put("segments", MapReport.segmentsJson(segments));
            return m;
        }
    }
}
