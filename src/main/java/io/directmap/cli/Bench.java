package io.directmap.cli;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.Importer;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.DeviceMapping;
import io.directmap.fs.Policy;
import io.directmap.fs.Segment;
import io.directmap.mm.AddressSpace;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.sys.Cachestat;
import io.directmap.sys.Commands;
import io.directmap.sys.FileHandle;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * dmap bench: one file, one block device, every way of moving the file into device memory, in
 * three cache states, in one run: the fio O_DIRECT limit, what a Java user writes (FileChannel
 * into a direct buffer, mmap and copy), and DirectMap all-direct, all-fallback and mixed.
 */
public final class Bench {
    public static final List<String> METHODS = List.of("fio", "java-read", "java-mmap", "direct", "fallback", "mixed");
    public static final List<String> CACHES = List.of("cold", "hot", "half");
    static final long STRIPE = 8L << 20;

    /** One measurement. gibPerS is NaN when the method could not run (skipped says why). */
    public record Result(String method, String cache, double gibPerS, double cpuSPerGib, long cacheGrowthBytes,
                         long requestBytes, int depth, long directBytes, String skipped) {
        public boolean ran() { return skipped == null; }
    }

    private final Path file;
    private final long size;
    private final String deviceName;
    private final Consumer<String> status;
    private final Progress progress;
    private MemorySegment javaMemory;

    public Bench(Path file, String deviceName, Consumer<String> status, Progress progress) throws IOException {
        this.file = file;
        this.size = Files.size(file);
        this.deviceName = deviceName;
        this.status = status;
        this.progress = progress;
    }

    /**
     * Runs every method in every cache state, repeat times over, interleaved so that the machine's
     * noise falls on all of them alike; each row is the run with the median throughput. The fio
     * row is skipped with a reason where fio cannot run.
     */
    public List<Result> run(List<String> caches, List<String> methods, int repeat) throws IOException {
        Workloads.syncAndEvict(file);   // dirty pages would hide the blocks from device_map
        Optional<Route> route = route();
        // The Java baselines' "device memory": allocated once and reused, as a device's memory is.
        try (Arena arena = Arena.ofShared()) {
            javaMemory = arena.allocate(size, 4096);
            javaMemory.fill((byte) 0);
            return runAll(caches, methods, repeat, route);
        } finally {
            javaMemory = null;
        }
    }

    private List<Result> runAll(List<String> caches, List<String> methods, int repeat, Optional<Route> route) throws IOException {
        Map<String, List<Result>> runs = new LinkedHashMap<>();
        int total = repeat * caches.size() * methods.size(), done = 0;
        for (int rep = 0; rep < repeat; rep++) {
            for (String cache : caches) {
                for (String method : methods) {
                    status.accept("[" + (++done) + "/" + total + "] " + method + ", " + cache + " file");
                    Result r = switch (method) {
                        case "fio" -> fio(cache, route);
                        case "java-read" -> javaRead(cache);
                        case "java-mmap" -> javaMmap(cache);
                        case "direct", "fallback", "mixed" -> directMap(method, cache);
                        default -> throw new IllegalArgumentException("unknown method " + method + "; use " + METHODS);
                    };
                    runs.computeIfAbsent(cache + "/" + method, k -> new ArrayList<>()).add(r);
                }
            }
        }
        List<Result> out = new ArrayList<>();
        for (List<Result> rs : runs.values()) {
            List<Result> sorted = new ArrayList<>(rs);
            sorted.sort(java.util.Comparator.comparingDouble(r -> r.ran() ? r.gibPerS() : -1));
            out.add(sorted.get(sorted.size() / 2));
        }
        return out;
    }

    /** The block device range that holds the file, as device_map sees it. */
    record Route(String device, List<long[]> ranges, long length) {}

    private Optional<Route> route() throws IOException {
        try (AddressSpace mm = AddressSpace.create(Topology.defaults(), new Policy(Policy.CachedPages.ALLOW));
             SoftwareDevice dev = SoftwareDevice.create(deviceName, mm.topology());
             Vma vma = mm.mmap(file)) {
            DeviceMapping m = vma.ops().deviceMap(vma, dev.endpoint(), 0, roundUp(size, 4096), Set.of(), false);
            try {
                // The device ranges that hold the file, in file order: fio reads exactly these.
                List<long[]> ranges = new ArrayList<>();
                String devNode = null;
                long total = 0;
                for (Segment s : m.segments()) {
                    if (!(s instanceof Segment.Direct d)) continue;
                    if (devNode != null && !devNode.equals(d.device().devNode().toString())) continue;
                    devNode = d.device().devNode().toString();
                    long[] last = ranges.isEmpty() ? null : ranges.getLast();
                    if (last != null && last[0] + last[1] == d.deviceOffset()) last[1] += d.length();
                    else ranges.add(new long[] {d.deviceOffset(), d.length()});
                    total += d.length();
                }
                return devNode == null ? Optional.empty() : Optional.of(new Route(devNode, ranges, total));
            } finally {
                vma.ops().deviceUnmap(vma, dev.endpoint(), m);
            }
        }
    }

    /** Puts the file in the cache state: cold (evicted), hot (all cached), half (every other 8 MiB cached). */
    private void prepare(String cache) throws IOException {
        Workloads.syncAndEvict(file);
        switch (cache) {
            case "cold" -> { }
            case "hot" -> readThroughCache(0, size);
            case "half" -> {
                for (long at = 0; at < size; at += 2 * STRIPE) readThroughCache(at, Math.min(STRIPE, size - at));
            }
            default -> throw new IllegalArgumentException("unknown cache state " + cache + "; use " + CACHES);
        }
    }

    private void readThroughCache(long offset, long length) throws IOException {
        Workloads.cache(file, offset, length);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocateDirect(1 << 20);
            for (long at = offset; at < offset + length; ) {
                b.clear().limit((int) Math.min(b.capacity(), offset + length - at));
                int n = ch.read(b, at);
                if (n <= 0) break;
                at += n;
            }
        }
    }

    private long cachedBytes() throws IOException {
        try (FileHandle h = FileHandle.openRead(file)) {
            return Cachestat.query(h, 0, 0).cached() * io.directmap.sys.Process.PAGE_SIZE;
        }
    }

    private static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    /** Times body, which moves size bytes; with the CPU it used and what the page cache grew by. */
    private Result measure(String method, String cache, long request, int depth, Body body) throws IOException {
        prepare(cache);
        long cachedBefore = cachedBytes();
        long cpu0 = cpuNanos(), t0 = System.nanoTime();
        long direct = body.run();
        long t = System.nanoTime() - t0, cpu = cpuNanos() - cpu0;
        double gib = size / (double) (1L << 30);
        return new Result(method, cache, gib / (t / 1e9), cpu / 1e9 / gib, cachedBytes() - cachedBefore, request, depth, direct, null);
    }

    @FunctionalInterface
    private interface Body {
        /** Moves the file; returns the bytes that went direct. */
        long run() throws IOException;
    }

    private Result javaRead(String cache) throws IOException {
        long request = 1L << 20;
        {
            MemorySegment deviceMemory = javaMemory;
            return measure("java-read", cache, request, 1, () -> {
                try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                    for (long at = 0; at < size; ) {
                        ByteBuffer dst = deviceMemory.asSlice(at, Math.min(request, size - at)).asByteBuffer();
                        int n = ch.read(dst, at);
                        if (n <= 0) break;
                        at += n;
                    }
                }
                progress.accept(size);
                return 0;
            });
        }
    }

    private Result javaMmap(String cache) throws IOException {
        long request = 4L << 20;
        try (Arena arena = Arena.ofShared(); FileHandle h = FileHandle.openRead(file)) {
            MemorySegment deviceMemory = javaMemory;
            MemorySegment mapped = h.mapShared(size, arena);
            return measure("java-mmap", cache, request, 1, () -> {
                for (long at = 0; at < size; at += request) {
                    MemorySegment.copy(mapped, at, deviceMemory, at, Math.min(request, size - at));
                }
                progress.accept(size);
                return 0;
            });
        }
    }

    /** DirectMap: all-direct (cached pages allowed), all-fallback (no peer path), or mixed (the learning policy). */
    private Result directMap(String method, String cache) throws IOException {
        Policy policy = switch (method) {
            case "direct" -> new Policy(Policy.CachedPages.ALLOW);
            case "mixed" -> Policy.learning();
            default -> Policy.defaults();
        };
        Topology topology = method.equals("fallback") ? Topology.parse("no-p2p " + deviceName + " *", "fallback") : Topology.defaults();
        try (AddressSpace mm = AddressSpace.create(topology, policy);
             SoftwareDevice dev = SoftwareDevice.create(deviceName, mm.topology());
             Vma vma = mm.mmap(file)) {
            long window = 64L << 20;
            try (DeviceMemory.Buffer buf = dev.allocate(file.toString(), roundUp(size, 4096))) {
                buf.segment().fill((byte) 0); // as for the Java baselines: memory touched before the timing
                if (method.equals("mixed")) {
                    // The policy learns as it goes: a first pass on this file (not timed) teaches it both paths' speeds.
                    try (Binding warm = dev.bind(vma, 0, roundUp(size, 4096), STRIPE, Set.of(), Importer.Mode.MIXED)) {
                        prepare(cache);
                        for (long at = 0; at < size; at += STRIPE) warm.read(at, Math.min(STRIPE, size - at), buf.segment().asSlice(at), n -> { });
                    }
                    if (System.getenv("DMAP_DEBUG") != null) {
                        var l = policy.learner();
                        status.accept(String.format("learned: direct %.2f, cold cache %.2f, hot cache %.2f GiB/s",
                                l.gibPerS(io.directmap.fs.PathLearner.Way.DIRECT), l.gibPerS(io.directmap.fs.PathLearner.Way.CACHE_COLD),
                                l.gibPerS(io.directmap.fs.PathLearner.Way.CACHE_HOT)));
                    }
                    vma.dropPageMappings(); // the timed pass faults its pages like every other method
                }
                long w = window;
                return measure(method, cache, io.directmap.device.SoftwareDevice.PEER_REQUEST, dev.queueDepth(), () -> {
                    try (Binding b = dev.bind(vma, 0, roundUp(size, 4096), w, Set.of(), Importer.Mode.MIXED)) {
                        Binding.Read r = b.read(0, size, buf.segment(), progress);
                        return r.directBytes();
                    }
                });
            }
        }
    }

    private Result fio(String cache, Optional<Route> route) throws IOException {
        long request = io.directmap.device.SoftwareDevice.PEER_REQUEST;
        int depth = io.directmap.device.Profile.ofDeviceName(deviceName).queueDepth();
        if (!Commands.available("fio")) return skipped("fio", cache, request, depth, "fio is not installed (apt-get install fio)");
        if (route.isEmpty()) return skipped("fio", cache, request, depth, "the file has no direct path to a block device (see dmap explain)");
        Route r = route.get();
        prepare(cache);
        long cachedBefore = cachedBytes();
        // One job per device range, one after the other (stonewall): the same bytes DirectMap reads.
        StringBuilder job = new StringBuilder("[global]\nfilename=" + r.device() + "\nrw=read\ndirect=1\nioengine=io_uring\n"
                + "bs=" + request + "\niodepth=" + depth + "\nstonewall\n");
        for (int i = 0; i < r.ranges().size(); i++) {
            long[] x = r.ranges().get(i);
            job.append("[range").append(i).append("]\noffset=").append(x[0]).append("\nsize=").append(x[1]).append("\n");
        }
        Path jobFile = Files.createTempFile("dmap-bench", ".fio");
        String json;
        try {
            Files.writeString(jobFile, job);
            json = Commands.run("fio", "--readonly", "--output-format=json", jobFile.toString());
        } catch (IOException e) {
            return skipped("fio", cache, request, depth, "fio failed: " + e.getMessage());
        } finally {
            Files.deleteIfExists(jobFile);
        }
        double bytes = 0, runtimeS = 0, cpuS = 0;
        for (String part : json.split("\"jobname\"")) {
            if (!part.contains("\"job_runtime\"")) continue;
            double rt = number(part, "job_runtime") / 1000.0;
            bytes += number(part, "io_bytes");
            runtimeS += rt;
            cpuS += (number(part, "usr_cpu") + number(part, "sys_cpu")) / 100.0 * rt;
        }
        double gib = bytes / (1L << 30);
        progress.accept(size);
        return new Result("fio", cache, gib / runtimeS, cpuS / gib, cachedBytes() - cachedBefore, request, depth, (long) bytes, null);
    }

    private static Result skipped(String method, String cache, long request, int depth, String why) {
        return new Result(method, cache, Double.NaN, Double.NaN, 0, request, depth, 0, why);
    }

    private static double number(String json, String field) {
        Matcher m = Pattern.compile("\"" + field + "\"\\s*:\\s*(-?[0-9.eE+]+)").matcher(json);
        if (!m.find()) throw new IllegalStateException("fio's JSON has no " + field);
        return Double.parseDouble(m.group(1));
    }

    private static long roundUp(long v, long to) {
        return (v + to - 1) / to * to;
    }

    /** The rows as the --json schema has them, with the ratios. */
    public static Map<String, Object> toJson(List<Result> results) {
        List<Object> rows = new ArrayList<>();
        for (Result r : results) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("method", r.method());
            m.put("cache", r.cache());
            m.put("gib_per_s", r.ran() ? round(r.gibPerS()) : null);
            m.put("cpu_s_per_gib", r.ran() ? round(r.cpuSPerGib()) : null);
            m.put("cache_growth_bytes", r.cacheGrowthBytes());
            m.put("request_bytes", r.requestBytes());
            m.put("depth", r.depth());
            m.put("vs_fio", ratio(r, fio(results, r.cache())));
            m.put("vs_best_java", ratio(r, bestJava(results, r.cache())));
            if (!r.ran()) m.put("skipped", r.skipped());
            rows.add(m);
        }
        return Map.of("results", rows);
    }

    static Optional<Result> fio(List<Result> results, String cache) {
        return results.stream().filter(x -> x.method().equals("fio") && x.cache().equals(cache) && x.ran()).findFirst();
    }

    static Optional<Result> bestJava(List<Result> results, String cache) {
        return results.stream().filter(x -> x.method().startsWith("java-") && x.cache().equals(cache) && x.ran())
                .max(java.util.Comparator.comparingDouble(Result::gibPerS));
    }

    static Double ratio(Result r, Optional<Result> base) {
        return r.ran() && base.isPresent() ? round(r.gibPerS() / base.get().gibPerS()) : null;
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}
