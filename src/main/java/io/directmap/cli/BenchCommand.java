package io.directmap.cli;

import io.directmap.mm.InvalidRequestException;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import io.directmap.tools.bench.Bench;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

@Command(name = "bench", description = {
        "Measure, in one run on the same file and block device: fio with O_DIRECT on the device ranges that hold",
        "the file (the bytes DirectMap reads) and on the file itself, what a Java user would write (FileChannel into",
        "a direct buffer, mmap and copy) and DirectMap all-direct, all-fallback and mixed (the learning policy), each",
        "on a cold, a hot and a half-hot file (every other 8 MiB cached). Each repeat runs them in a shuffled order",
        "(--seed repeats one). Prints GiB/s (min, median, max), CPU seconds per GiB, page-cache growth, and the",
        "median as a ratio to both fio rows and to the best Java baseline. Every row must read the same bytes.",
        "Without FILE, as root, it makes a scratch ext4 on a loop device (direct I/O on) and a --size file there."})
final class BenchCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Parameters(paramLabel = "FILE", arity = "0..1", description = "The file to read (default: a --size file on a scratch filesystem).")
    Path file;

    @Option(names = "--size", paramLabel = "SIZE", defaultValue = "1G", description = "Size of the scratch file (default: ${DEFAULT-VALUE}).")
    Size size;

    @Option(names = "--fs", paramLabel = "ext4|xfs|btrfs", defaultValue = "ext4", description = "The scratch filesystem (default: ${DEFAULT-VALUE}).")
    ScratchFilesystem.Type fs;

    @Option(names = "--device", paramLabel = "NAME", defaultValue = "gpu0", description = "The software device (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--caches", split = ",", paramLabel = "LIST", defaultValue = "cold,hot,half", converter = CacheState.class,
            description = "Cache states (default: ${DEFAULT-VALUE}).")
    List<String> caches;

    @Option(names = "--methods", split = ",", paramLabel = "LIST", defaultValue = "fio-ranges,fio-file,java-read,java-mmap,direct,fallback,mixed",
            converter = Method.class, description = "Methods (default: ${DEFAULT-VALUE}). The write rows, fio-write,java-write,write-direct,"
                    + " run only when named: they write the file's size into it (fio its own pattern), durably, and are compared with each other.")
    List<String> methods;

    @Mixin Common.TopologyOption topology;

    @Mixin Common.LearnerOption learner;

    @Option(names = "--repeat", defaultValue = "3", description = "Runs of each measurement; min, median and max are shown (default: ${DEFAULT-VALUE}).")
    int repeat;

    @Option(names = "--seed", paramLabel = "N", description = "Seed of the order the measurements run in (default: a new one, printed).")
    Long seed;

    @Option(names = "--json", description = "Print the setup and the table as JSON ({..., \"results\": [...]}) for comparing runs over time.")
    boolean json;

    @Option(names = "--plot", paramLabel = "FILE.html", description = "Also write the table as a bar chart (an HTML page with SVG).")
    Path plot;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        // --topology is checked here (a bad line fails with the file and the line); each row makes its own from the rules.
        Bench.Machine machine = topology.file == null ? Bench.Machine.defaults(learner.evictedPageCost)
                : new Bench.Machine(topology.load().source(), Files.readString(topology.file), learner.evictedPageCost);
        ScratchFilesystem scratch = null;
        Path target = file;
        try {
            if (target == null) {
                Optional<String> why = ScratchFilesystem.unavailableBecause(fs);
                if (why.isPresent()) throw new InvalidRequestException("bench needs FILE here: it cannot make a scratch filesystem (" + why.get() + ")");
                long bytes = size.bytes();
                err.println("dmap bench: making a scratch " + fs.fsName() + " with a " + io.directmap.sys.Units.bytes(bytes) + " file ...");
                scratch = ScratchFilesystem.create(fs, bytes + bytes / 4 + (256L << 20), false, List.of());
                target = scratch.mountPoint().resolve("bench.bin");
                Workloads.write(target, 0, bytes, 1);
            } else if (!Files.isRegularFile(target) || Files.size(target) < (8L << 20)) {
                throw new InvalidRequestException(target + ": give a regular file of at least 8 MiB");
            }
            long order = seed != null ? seed : io.directmap.lang.Xorshift.newSeed();
            err.println("dmap bench: measuring in an order shuffled with --seed " + order + " ...");
            Bench.Report report;
            try (Progress bar = new Progress(err, Files.size(target), !json)) {
                report = new Bench(target, device, machine, line -> err.println("  " + line), bar).run(caches, methods, Math.max(1, repeat), order);
            }
            if (json) {
                out.print(Json.write(Bench.toJson(report)));
            } else {
                print(out, report);
            }
            if (plot != null) {
                Files.writeString(plot, BenchPlot.html(target + " (" + io.directmap.sys.Units.bytes(Files.size(target)) + ")", report));
                if (!json) out.println("plot: " + plot.toAbsolutePath());
            }
            out.flush();
            return Dmap.OK;
        } finally {
            if (scratch != null) scratch.close();
        }
    }

    private static void print(PrintWriter out, Bench.Report report) {
        Bench.Setup s = report.setup();
        out.printf("%s, %s, on %s%s; DirectMap direct and fio read %s requests, %d deep; %d runs each, order seed %d%n", s.file(),
                io.directmap.sys.Units.bytes(s.size()), s.device() == null ? "no block device" : s.device(),
                s.loopDirectIo().map(d -> d ? " (loop, direct I/O on)" : " (loop, direct I/O OFF: its backing file's page cache serves reads)").orElse(""),
                io.directmap.sys.Units.bytes(s.requestBytes()), s.depth(), s.repeat(), s.seed());
        out.printf("%-6s %-12s %7s %7s %7s %10s %13s %9s %8s %8s %8s%n", "cache", "method", "min", "median", "max", "CPU s/GiB",
                "cache growth", "dev reqs", "vs fio-r", "vs fio-f", "vs java");
        String last = null;
        for (Bench.Row r : report.rows()) {
            if (last != null && !last.equals(r.cache())) out.println();
            last = r.cache();
            if (!r.ran()) {
                out.printf("%-6s %-12s  skipped: %s%n", r.cache(), r.method(), r.skipped());
                continue;
            }
            boolean w = Bench.writes(r.method());
            // A write row is compared with the write baselines: fio-write in the fio-f column, java-write in the java one.
            out.printf(Locale.ROOT, "%-6s %-12s %7.2f %7.2f %7.2f %10.3f %13s %9d %8s %8s %8s%n", r.cache(), r.method(), r.min(), r.median(), r.max(),
                    r.medianRun().cpuSPerGib(), io.directmap.sys.Units.bytes(Math.max(0, r.medianRun().cacheGrowthBytes())), r.medianRun().deviceRequests(),
                    w ? "-" : ratio(Bench.ratio(r, Bench.row(report.rows(), "fio-ranges", r.cache()))),
                    ratio(Bench.ratio(r, Bench.row(report.rows(), w ? "fio-write" : "fio-file", r.cache()))),
                    ratio(Bench.ratio(r, w ? Bench.row(report.rows(), "java-write", r.cache()) : Bench.bestJava(report.rows(), r.cache()))));
        }
        out.println("GiB/s; dev reqs: read requests the block device completed in the median run; ratios are of medians. Every row read " + io.directmap.sys.Units.bytes(s.size())
                + " (fio-ranges: the file's blocks on the device, " + s.spans() + (s.spans() == 1 ? " span" : " spans, one fio job each") + "), checked.");
        if (report.rows().stream().anyMatch(r -> Bench.writes(r.method()))) {
            out.println("Write rows: every one wrote " + io.directmap.sys.Units.bytes(s.size()) + " and made it durable; dev reqs counts write"
                    + " requests; vs fio-f is against fio-write, vs java against java-write.");
        }
    }

    /** --caches: a cache state the bench knows. */
    static final class CacheState implements ITypeConverter<String> {
        @Override
        public String convert(String s) {
            if (!Bench.CACHES.contains(s)) throw new TypeConversionException("unknown state '" + s + "'; use " + Bench.CACHES);
            return s;
        }
    }

    /** --methods: a method the bench knows. */
    static final class Method implements ITypeConverter<String> {
        @Override
        public String convert(String s) {
            if (!Bench.METHODS.contains(s) && !Bench.writes(s)) {
                throw new TypeConversionException("unknown method '" + s + "'; use " + Bench.METHODS + " or the write rows " + Bench.WRITE_METHODS);
            }
            return s;
        }
    }

    private static String ratio(Double v) {
        return v == null ? "-" : String.format(Locale.ROOT, "%.2f", v);
    }
}
