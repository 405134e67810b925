package io.directmap.cli;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.ExportedMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.lang.Xorshift;
import io.directmap.mm.AddressSpace;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.MapMode;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.sys.Units;
import java.io.PrintWriter;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.zip.CRC32C;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "p2p", description = {
        "Device to device through a device file: the exporter's memory, filled with a pattern, is mapped by the",
        "importer and copied, peer to peer where the topology allows it, else bounced through host memory;",
        "shows range by range which way the bytes went and why, and compares them byte for byte."})
final class P2pCommand implements Callable<Integer> {
    /** The importer binds the device file in windows of this size, each faulted through device_map (as dmap watch does). */
    static final long WINDOW = 8L << 20;

    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--from", paramLabel = "DEVICE", defaultValue = "gpu1",
            description = "The exporter: a software device (gpuN, nicN, fpgaN) that exports its memory (default: ${DEFAULT-VALUE}).")
    String from;

    @Option(names = "--to", paramLabel = "DEVICE", defaultValue = "nic0",
            description = "The importer: the software device that maps the exporter's device file and reads it (default: ${DEFAULT-VALUE}).")
    String to;

    @Option(names = "--size", paramLabel = "SIZE", defaultValue = "64M",
            description = "How much memory to export and copy, rounded up to whole pages (default: ${DEFAULT-VALUE}).")
    Size size;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "1",
            description = "The seed of the pattern the exporter's memory is filled with (default: ${DEFAULT-VALUE}).")
    long seed;

    @Mixin Common.TopologyOption topology;

    @Option(names = "--json", description = "Print JSON for programs instead of tables.")
    boolean json;

    /** What one copy did. */
    record Report(String from, String to, String deviceFile, String topology, long bytes, long p2pBytes, long bounceBytes,
                  double seconds, List<Segment> segments, long exporterCrc, long importerCrc, boolean bytesEqual, long seed) {
        boolean checksumOk() { return exporterCrc == importerCrc && bytesEqual; }

        void print(PrintWriter out) {
            out.printf("p2p      %s exports %s as %s; %s maps it and reads it (%s)%n", from, Units.bytes(bytes), deviceFile, to, topology);
            out.println();
            MapReport.segmentTable(segments).print(out);
            out.println();
            out.printf("moved    %s from %s to %s: %s peer to peer (%s), %s bounced through host memory%n", Units.bytes(bytes), from, to,
                    Units.bytes(p2pBytes), bytes == 0 ? "-" : String.format(Locale.ROOT, "%.1f%%", 100.0 * p2pBytes / bytes),
                    Units.bytes(bounceBytes));
            out.printf("time     DMA %.1f ms, %s%n", seconds * 1e3, Units.rate(bytes, seconds));
            out.printf("checksum crc32c %08x in %s's memory, %08x in %s's (pattern seed %d): %s%n", exporterCrc, from, importerCrc, to, seed,
                    checksumOk() ? "match" : "MISMATCH");
        }

        Map<String, Object> toJson() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("from", from);
            m.put("to", to);
            m.put("device_file", deviceFile);
            m.put("topology", topology);
            m.put("bytes", bytes);
            m.put("p2p_bytes", p2pBytes);
            m.put("bounce_bytes", bounceBytes);
            m.put("seconds", seconds);
            m.put("gib_per_s", seconds > 0 ? bytes / seconds / (1L << 30) : null);
            m.put("seed", seed);
            m.put("checksum_exporter", String.format("%08x", exporterCrc));
            m.put("checksum_importer", String.format("%08x", importerCrc));
            m.put("checksum_ok", checksumOk());
            m.put("segments", MapReport.segmentsJson(segments));
            return m;
        }
    }

    @Override
    public Integer call() throws Exception {
        if (from.equals(to)) throw new InvalidRequestException("--from and --to are both " + from + "; give two devices (--from gpu1 --to nic0)");
        if (size.bytes() <= 0) throw new InvalidRequestException("--size " + size + " is empty; give a size such as 64M");
        Topology t = topology.load();
        Report report = run(t, from, to, size.bytes(), seed);
        PrintWriter out = spec.commandLine().getOut();
        if (json) out.print(Json.write(report.toJson())); else report.print(out);
        out.flush();
        return report.checksumOk() ? Dmap.OK : Dmap.FAILED;
    }

    /** Exports, fills, maps, copies, compares; everything is closed (the export freed after the importer let go) on every way out. */
    static Report run(Topology t, String from, String to, long bytes, long seed) throws java.io.IOException {
        try (AddressSpace mm = AddressSpace.create(t);
             SoftwareDevice exporter = SoftwareDevice.create(from, t);
             SoftwareDevice importer = SoftwareDevice.create(to, t);
             ExportedMemory exported = exporter.export(bytes)) {
            MemorySegment source = exported.memory();
            Xorshift.seeded(seed).fill(source);
            long exporterCrc = crc(source);
            try (Vma vma = exported.mmap(mm);
                 Binding b = importer.bind(vma, 0, vma.length(), Math.max(WINDOW, Binding.smallestWindow(vma.length())), Set.of(),
                         MapMode.MIXED);
                 DeviceMemory.Buffer dst = importer.allocate(exported.node().toString(), vma.length())) {
                long t0 = System.nanoTime();
                Binding.Read r = b.read(0, vma.length(), dst.segment(), done -> { });
                double seconds = (System.nanoTime() - t0) / 1e9;
                List<Segment> segments = new ArrayList<>();
                for (DeviceMapping m : b.liveMappings()) segments.addAll(m.segments());
                return new Report(from, to, exported.node().toString(), t.source(), vma.length(), r.directBytes(), r.fallbackBytes(),
                        seconds, segments, exporterCrc, crc(dst.segment()), source.mismatch(dst.segment()) == -1, seed);
            }
        }
    }

    /** CRC32C of s, a slice at a time (a ByteBuffer holds less than 2 GiB). */
    private static long crc(MemorySegment s) {
        CRC32C c = new CRC32C();
        long step = 1L << 30;
        for (long at = 0; at < s.byteSize(); at += step) c.update(s.asSlice(at, Math.min(step, s.byteSize() - at)).asByteBuffer());
        return c.getValue();
    }
}
