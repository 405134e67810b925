package io.directmap.cli;

import io.directmap.fs.InvalidRequestException;
import io.directmap.pci.Topology;
import io.directmap.sys.ScratchFilesystem;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "bench", description = {
        "Measure, in one run on the same file and block device: fio's O_DIRECT limit, what a Java user would write",
        "(FileChannel into a direct buffer, mmap and copy) and DirectMap all-direct, all-fallback and mixed (the",
        "learning policy), each on a cold, a hot and a half-hot file (every other 8 MiB cached). Prints GiB/s,",
        "CPU seconds per GiB, page-cache growth, and each figure as a ratio to fio and to the best Java baseline.",
        "Without FILE, as root, it makes a scratch ext4 on a loop device (direct I/O on) and a --size file there."})
final class BenchCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Parameters(paramLabel = "FILE", arity = "0..1", description = "The file to read (default: a --size file on a scratch filesystem).")
    Path file;

    @Option(names = "--size", paramLabel = "SIZE", defaultValue = "1G", description = "Size of the scratch file (default: ${DEFAULT-VALUE}).")
    String size;

    @Option(names = "--fs", paramLabel = "ext4|xfs|btrfs", defaultValue = "ext4", description = "The scratch filesystem (default: ${DEFAULT-VALUE}).")
    String fs;

    @Option(names = "--device", paramLabel = "NAME", defaultValue = "gpu0", description = "The software device (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--caches", split = ",", paramLabel = "LIST", defaultValue = "cold,hot,half", description = "Cache states (default: ${DEFAULT-VALUE}).")
    List<String> caches;

    @Option(names = "--methods", split = ",", paramLabel = "LIST", defaultValue = "fio,java-read,java-mmap,direct,fallback,mixed",
            description = "Methods (default: ${DEFAULT-VALUE}).")
    List<String> methods;

    @Option(names = "--repeat", defaultValue = "3", description = "Runs of each measurement; the median is shown (default: ${DEFAULT-VALUE}).")
    int repeat;

    @Option(names = "--json", description = "Print the table as JSON ({\"results\": [...]}) for comparing runs over time.")
    boolean json;

    @Option(names = "--plot", paramLabel = "FILE.html", description = "Also write the table as a bar chart (an HTML page with SVG).")
    Path plot;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        for (String c : caches) if (!Bench.CACHES.contains(c)) throw new InvalidRequestException("--caches: unknown state '" + c + "'; use " + Bench.CACHES);
        for (String m : methods) if (!Bench.METHODS.contains(m)) throw new InvalidRequestException("--methods: unknown method '" + m + "'; use " + Bench.METHODS);
        ScratchFilesystem scratch = null;
        Path target = file;
        try {
            if (target == null) {
                ScratchFilesystem.Type type;
                try {
                    type = ScratchFilesystem.Type.valueOf(fs.toUpperCase(Locale.ROOT));
                } catch (IllegalArgumentException e) {
                    throw new InvalidRequestException("--fs " + fs + ": use ext4, xfs or btrfs");
                }
                Optional<String> why = ScratchFilesystem.unavailableBecause(type);
                if (why.isPresent()) throw new InvalidRequestException("bench needs FILE here: it cannot make a scratch filesystem (" + why.get() + ")");
                long bytes = Topology.parseSize(size, "--size");
                err.println("dmap bench: making a scratch " + type.fsName() + " with a " + io.directmap.sys.Units.bytes(bytes) + " file ...");
                scratch = ScratchFilesystem.create(type, bytes + bytes / 4 + (256L << 20), false, List.of());
                target = scratch.mountPoint().resolve("bench.bin");
                Workloads.write(target, 0, bytes, 1);
            } else if (!Files.isRegularFile(target) || Files.size(target) < (8L << 20)) {
                throw new InvalidRequestException(target + ": give a regular file of at least 8 MiB");
            }
            List<Bench.Result> results;
            try (Progress bar = new Progress(err, Files.size(target), !json)) {
                results = new Bench(target, device, line -> err.println("  " + line), bar).run(caches, methods, Math.max(1, repeat));
            }
            if (json) {
                out.print(Json.write(Bench.toJson(results)));
            } else {
                print(out, target, results);
            }
            if (plot != null) {
                Files.writeString(plot, BenchPlot.html(target + " (" + io.directmap.sys.Units.bytes(Files.size(target)) + ")", results));
                if (!json) out.println("plot: " + plot.toAbsolutePath());
            }
            out.flush();
            return Dmap.OK;
        } finally {
            if (scratch != null) scratch.close();
        }
    }

    private static void print(PrintWriter out, Path file, List<Bench.Result> results) throws java.io.IOException {
        out.printf("%s, %s; fio and DirectMap direct read %s requests, %d deep%n", file,
                io.directmap.sys.Units.bytes(Files.size(file)), io.directmap.sys.Units.bytes(results.getFirst().requestBytes()),
                results.stream().filter(r -> r.method().equals("direct")).findFirst().map(Bench.Result::depth).orElse(0));
        out.printf("%-6s %-10s %9s %11s %13s %8s %10s%n", "cache", "method", "GiB/s", "CPU s/GiB", "cache growth", "vs fio", "vs java");
        String last = null;
        for (Bench.Result r : results) {
            if (last != null && !last.equals(r.cache())) out.println();
            last = r.cache();
            if (!r.ran()) {
                out.printf("%-6s %-10s  skipped: %s%n", r.cache(), r.method(), r.skipped());
                continue;
            }
            Double vsFio = Bench.ratio(r, Bench.fio(results, r.cache())), vsJava = Bench.ratio(r, Bench.bestJava(results, r.cache()));
            out.printf(Locale.ROOT, "%-6s %-10s %9.2f %11.3f %13s %8s %10s%n", r.cache(), r.method(), r.gibPerS(), r.cpuSPerGib(),
                    io.directmap.sys.Units.bytes(Math.max(0, r.cacheGrowthBytes())), vsFio == null ? "-" : String.format(Locale.ROOT, "%.2f", vsFio),
                    vsJava == null ? "-" : String.format(Locale.ROOT, "%.2f", vsJava));
        }
    }
}
