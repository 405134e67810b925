package io.directmap.cli;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.fs.FsStack;
import io.directmap.fs.InvalidationReport;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapMode;
import io.directmap.mm.Vma;
import io.directmap.sys.Openers;
import io.directmap.sys.Process;
import io.directmap.sys.Units;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "watch", description = {
        "Keep FILE mapped into a device and print each invalidation as it happens: what changed, the range,",
        "whether the change waited for the device, how long the device took to let go, and who did it.",
        "With range events (fanotify, root, kernel 6.14 or later) a write takes back only the windows it overlaps;",
        "with --no-range-events (or where they do not work) a read lease takes back every window at the writer's open().",
        "The device reads the range again after each one (faulting through device_map). Ctrl-C to stop."})
final class WatchCommand implements Callable<Integer> {
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss.SSS");

    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin Common common;

    @Parameters(paramLabel = "FILE", description = "The file to keep mapped.")
    Path file;

    @Option(names = "--range", paramLabel = "START:END", description = "Bytes to map (default: the whole file); sizes like 4M.")
    Range range;

    @Option(names = "--window", paramLabel = "SIZE", defaultValue = "8M",
            description = "The device maps the range in windows of this size; an invalidation takes back only the windows it touches (default: ${DEFAULT-VALUE}).")
    Size window;

    @Option(names = "--for", paramLabel = "SECONDS", description = "Stop after this many seconds (default: until Ctrl-C).")
    Double seconds;

    @Option(names = "--count", paramLabel = "N", description = "Stop after N invalidations.")
    Integer count;

    private record Seen(InvalidationReport report, String who) {}

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        Range r = range == null ? Range.WHOLE : range;
        long windowBytes = windowBytes();
        LinkedBlockingQueue<Seen> reports = new LinkedBlockingQueue<>();
        try (FsStack mm = common.addressSpace(); var dev = common.device(mm); Vma vma = mm.mmap(file);
             var _ = StatsFiles.Publisher.start(mm, "dmap watch " + file, spec.commandLine().getErr())) {
            long page = Process.PAGE_SIZE;
            long start = (r.start() == null ? 0 : r.start()) / page * page;
            long end = r.end() == null ? vma.length() : Math.min(r.end(), vma.length());
            long mapEnd = (end + page - 1) / page * page;
            Path path = vma.file().path();
            // The listener runs before the writer is let go, so the writer is still there to be named.
            mm.fs().addInvalidationListener(rep -> reports.add(new Seen(rep,
                    rep.invalidation().cause() == Invalidation.Cause.WRITE_OPEN ? String.join(", ", suspects(path)) : "")));
            try (Binding b = dev.bind(vma, start, mapEnd, windowBytes, Set.of(), MapMode.MIXED)
                    .coherentWait(Duration.ofSeconds(5));
                 DeviceMemory.Buffer buf = dev.allocate(file.toString(), mapEnd - start)) {
                Binding.Read first = b.read(start, end - start, buf.segment(), n -> { });
                String heldBackBy = mm.fs().changesHeardBy(path);
                if (common.json) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("event", "mapped");
                    m.put("file", vma.file().path().toString());
                    m.put("start", start);
                    m.put("end", end);
                    m.put("direct_bytes", first.directBytes());
                    m.put("fallback_bytes", first.fallbackBytes());
                    m.put("held_back_by", heldBackBy);
                    out.println(Json.write(m).replace("\n", " ").strip());
                } else {
                    out.printf("watching %s %s with %s: %s direct, %s through the page cache; windows of %s%n",
                            vma.file().path(), Units.range(start, end), dev.name(), Units.bytes(first.directBytes()),
                            Units.bytes(first.fallbackBytes()), Units.bytes(windowBytes));
                    out.printf("changes held back by %s%n", heldBackBy);
                    out.printf("%-12s  %-13s %-22s %-10s %8s %12s  %s%n", "time", "cause", "range", "change", "mappings", "let go in", "by / detail");
                }
                out.flush();
                long deadline = seconds == null ? Long.MAX_VALUE : System.nanoTime() + (long) (seconds * 1e9);
                int seen = 0;
                while (System.nanoTime() < deadline && (count == null || seen < count)) {
                    Seen s = reports.poll(100, TimeUnit.MILLISECONDS);
                    if (s == null) continue;
                    InvalidationReport rep = s.report();
                    if (rep.mappings() == 0 && rep.invalidation().cause() != Invalidation.Cause.WRITE_OPEN) continue;
                    seen++;
                    print(out, rep, s.who());
                    // Keep the mapping live: read again, faulting through device_map where it was taken back.
                    try {
                        Binding.Read again = b.read(start, end - start, buf.segment(), n -> { });
                        if (!common.json) {
                            out.printf("%-12s  re-faulted: %s direct, %s through the page cache%s%n", "",
                                    Units.bytes(again.directBytes()), Units.bytes(again.fallbackBytes()),
                                    again.coherent() ? "" : " (a writer still holds the file open)");
                        }
                    } catch (java.io.IOException e) {
                        out.printf("%-12s  reading again failed: %s%n", "", e.getMessage());
                    }
                    out.flush();
                }
                if (!common.json) {
                    out.printf("%d invalidations, %d re-faults, %d reads retried%n", b.invalidations(), b.refaults(), b.retries());
                }
            }
        }
        out.flush();
        return Dmap.OK;
    }

    /**
     * --window as bytes: a positive multiple of the page size, or bad input (exit 2). Whether it cuts
     * the range into few enough windows is bind's check, whose message gives the smallest it allows.
     */
    private long windowBytes() throws InvalidRequestException {
        long page = Process.PAGE_SIZE;
        long w = window.bytes();
        if (w <= 0 || w % page != 0) {
            throw new InvalidRequestException("--window " + window + ": give a positive multiple of the page size (" + page
                    + " bytes), such as 64K or 8M");
        }
        return w;
    }

    private static List<String> suspects(Path file) {
        List<String> s = Openers.suspects(file);
        return s.isEmpty() ? List.of("not found (the writer may have no command line naming the file)") : s;
    }

    private void print(PrintWriter out, InvalidationReport rep, String who) {
        Invalidation inv = rep.invalidation();
        String rangeText = inv.end() == Long.MAX_VALUE ? "[" + inv.start() + ", EOF)" : Units.range(inv.start(), inv.end());
        if (common.json) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("event", "invalidation");
            m.put("time", LocalTime.now().format(TIME));
            m.put("cause", inv.cause().code());
            m.put("start", inv.start());
            m.put("end", inv.end() == Long.MAX_VALUE ? null : inv.end());
            m.put("held_back", inv.heldBack());
            m.put("mappings", rep.mappings());
            m.put("ack_us", rep.ackNanos() / 1000);
            m.put("by", who);
            m.put("detail", inv.detail());
            out.println(Json.write(m).replace("\n", " ").strip());
            return;
        }
        out.printf("%-12s  %-13s %-22s %-10s %8d %9.2f ms  %s%n", LocalTime.now().format(TIME), inv.cause().code(), rangeText,
                inv.heldBack() ? "held back" : "seen after", rep.mappings(), rep.ackNanos() / 1e6,
                who.isEmpty() ? inv.detail() : who);
    }
}
