package io.directmap.tools.bench;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.PathLearner;
import io.directmap.fs.Policy;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.MapMode;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Segment;
import io.directmap.mm.Transfer;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.sys.Cachestat;
import io.directmap.sys.FileHandle;
import io.directmap.tools.Commands;
import io.directmap.tools.Workloads;
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
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.LongConsumer;

/**
 * dmap bench: one file, one block device, every way of moving the file into device memory, in
 * three cache states, in one run: fio with O_DIRECT on the device ranges DirectMap reads and on
 * the file itself, what a Java user writes (FileChannel into a direct buffer, mmap and copy), and
 * DirectMap all-direct, all-fallback and mixed. Each repeat runs every (cache, method) pair once,
 * in an order shuffled from a printed seed, so that the machine's drift falls on all of them alike;
 * every row reads the same bytes, and the bench fails where one did not.
 */
public final class Bench {
    public static final List<String> METHODS = List.of("fio-ranges", "fio-file", "java-read", "java-mmap", "direct", "fallback", "mixed");
    public static final List<String> CACHES = List.of("cold", "hot", "half");
    /**
     * The write rows (not run unless --methods names them): fio writing the file with O_DIRECT at
     * DirectMap's request size and depth, one process, then fsync; FileChannel writes from native
     * memory, then force (fdatasync); DirectMap's WRITE path, durable. Each writes the file's size
     * in bytes and ends with them on stable storage.
     */
    public static final List<String> WRITE_METHODS = List.of("fio-write", "java-write", "write-direct");

    /** Whether method is one of {@link #WRITE_METHODS}. */
    public static boolean writes(String method) { return WRITE_METHODS.contains(method); }
    static final long STRIPE = 8L << 20;

    /** One measurement. gibPerS is NaN when the method could not run (skipped says why). */
    public record Result(String method, String cache, double gibPerS, double cpuSPerGib, long cacheGrowthBytes,
                         long requestBytes, int depth, long bytesRead, long directBytes, long deviceRequests, String skipped) {
        public boolean ran() { return skipped == null; }
    }

    /** Every run of one method in one cache state; the figures shown are the median run's. */
    public record Row(String method, String cache, List<Result> runs) {
        public boolean ran() { return runs.stream().allMatch(Result::ran); }
        public String skipped() { return runs.stream().map(Result::skipped).filter(java.util.Objects::nonNull).findFirst().orElse(null); }
        private double[] sorted() { return runs.stream().mapToDouble(Result::gibPerS).sorted().toArray(); }
        public double min() { return sorted()[0]; }
        public double max() { return sorted()[runs.size() - 1]; }
        /** The median throughput (the mean of the middle two for an even count). */
        public double median() {
            double[] v = sorted();
            return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
        }
        /** The run whose throughput is the median (the lower middle one for an even count): its CPU and cache figures. */
        public Result medianRun() {
            List<Result> s = new ArrayList<>(runs);
            s.sort(Comparator.comparingDouble(Result::gibPerS));
            return s.get((s.size() - 1) / 2);
        }
    }

    /**
     * What every row shares: the file, the block device under it (and for a loop device whether it
     * does direct I/O on its backing file, else the host's page cache serves the "cold" reads), the
     * request size and depth of DirectMap's direct reads and both fio rows, and the order seed.
     */
    public record Setup(Path file, long size, String device, Optional<Boolean> loopDirectIo, int spans, long requestBytes, int depth,
                        int repeat, long seed) {}

    public record Report(Setup setup, List<Row> rows) {}

    /**
     * The machine the DirectMap rows run on: the topology's rules (empty: every device a peer of
     * every other) and where they came from, and what the mixed row's learner puts on one evicted
     * page of hot cache. The rows keep their own policies: direct allows cached pages, fallback
     * adds a rule that the device has no peer path, mixed learns.
     */
    public record Machine(String topologySource, String topologyRules, double evictedPageNanos) {
        /** The default topology, and the learner with that price. */
        public static Machine defaults(double evictedPageNanos) {
            return new Machine("default topology", "", evictedPageNanos);
        }
    }

    private final Path file;
    private final long size;
    private final String deviceName;
    private final Machine machine;
    private final Consumer<String> status;
    private final LongConsumer progress;
    private final int depth;
    private MemorySegment javaMemory;
    private MemorySegment writeSource;
    private Path deviceStat;

    public Bench(Path file, String deviceName, Machine machine, Consumer<String> status, LongConsumer progress) throws IOException {
        this.file = file;
        this.size = Files.size(file);
        this.deviceName = deviceName;
        this.machine = machine;
        this.status = status;
        this.progress = progress;
        this.depth = io.directmap.device.Profile.ofDeviceName(deviceName).queueDepth();
    }

    /**
     * Runs every method in every cache state, repeat times over; in each repeat the (cache, method)
     * pairs run in an order shuffled by an {@link io.directmap.lang.Xorshift} seeded with seed. A fio row is skipped with a
     * reason where fio cannot run.
     */
    public Report run(List<String> caches, List<String> methods, int repeat, long seed) throws IOException {
        Workloads.syncAndEvict(file);   // dirty pages would hide the blocks from device_map
        Route route = route();
        deviceStat = route.device() == null ? null : Path.of("/sys/class/block", Path.of(route.device()).getFileName().toString(), "stat");
        Setup setup = new Setup(file, size, route.device(), route.loopDirectIo(), route.spans().size(), SoftwareDevice.directRequestSize(route.directBytes(), depth), depth, repeat, seed);
        // The Java baselines' "device memory": allocated once and reused, as a device's memory is.
        try (Arena arena = Arena.ofShared()) {
            javaMemory = arena.allocate(size, 4096);
            javaMemory.fill((byte) 0);
            if (methods.stream().anyMatch(Bench::writes)) {
                writeSource = arena.allocate(size, 4096);
                io.directmap.lang.Xorshift.seeded(seed).fill(writeSource);
            }
            return new Report(setup, runAll(caches, methods, setup, route));
        } finally {
            javaMemory = null;
            writeSource = null;
        }
    }

    private List<Row> runAll(List<String> caches, List<String> methods, Setup setup, Route route) throws IOException {
        Map<String, List<Result>> runs = new LinkedHashMap<>();
        for (String cache : caches) for (String method : methods) runs.put(cache + "/" + method, new ArrayList<>());
        io.directmap.lang.Xorshift order = io.directmap.lang.Xorshift.seeded(setup.seed());
        int total = setup.repeat() * runs.size(), done = 0;
        for (int rep = 0; rep < setup.repeat(); rep++) {
            List<String> pairs = new ArrayList<>(runs.keySet());
            order.shuffle(pairs);
            for (String pair : pairs) {
                String cache = pair.substring(0, pair.indexOf('/')), method = pair.substring(pair.indexOf('/') + 1);
                status.accept("[" + (++done) + "/" + total + "] " + method + ", " + cache + " file");
                Result r = switch (method) {
                    case "fio-ranges" -> fioRanges(cache, route, setup);
                    case "fio-file" -> fioFile(cache, setup);
                    case "java-read" -> javaRead(cache);
                    case "java-mmap" -> javaMmap(cache);
                    case "direct", "fallback", "mixed" -> directMap(method, cache, setup);
                    case "fio-write" -> fioWrite(cache, setup);
                    case "java-write" -> javaWrite(cache);
                    case "write-direct" -> directWrite(cache, setup);
                    default -> throw new IllegalArgumentException("unknown method " + method + "; use " + METHODS);
                };
                checkBytes(r, route);
                runs.get(pair).add(r);
            }
        }
        List<Row> out = new ArrayList<>();
        runs.forEach((k, rs) -> out.add(new Row(rs.getFirst().method(), rs.getFirst().cache(), List.copyOf(rs))));
        return out;
    }

    private void checkBytes(Result r, Route route) throws IOException {
        String mismatch = bytesMismatch(r, file, size, route.device(), route.directBytes());
        if (mismatch != null) throw new IOException(mismatch);
    }

    /**
     * Every row must have read the same bytes, or its figure is for other work: the file's size,
     * and for fio on the device ranges (and DirectMap's direct row, which reads those ranges) the
     * bytes the file has on the device. Null when r read what it should (or did not run).
     */
    static String bytesMismatch(Result r, Path file, long size, String device, long deviceBytes) {
        if (!r.ran()) return null;
        if (r.method().equals("direct") && deviceBytes > 0 && r.directBytes() != deviceBytes) {
            return file + ": DirectMap's direct row (" + r.cache() + " file) read " + r.directBytes() + " bytes from " + device
                    + ", but fio-ranges reads " + deviceBytes + "; did the file change during the bench? Run it again on a file nobody writes";
        }
        boolean ranges = r.method().equals("fio-ranges");
        long want = ranges ? deviceBytes : size;
        if (r.bytesRead() == want) return null;
        return file + ": " + r.method() + " (" + r.cache() + " file) read " + r.bytesRead() + " bytes, not " + want
                + (ranges ? " (the bytes DirectMap reads from " + device + ")" : " (the file's size)")
                + "; its figure would not compare with the other rows. Is the file changing, or does it end mid-block?";
    }


    /**
     * Where the file's blocks are on the block device, as device_map sees it: the contiguous device
     * spans in file order (what fio-ranges reads), or why there is no such route (noRoute).
     */
    record Route(String device, Optional<Boolean> loopDirectIo, List<long[]> spans, long directBytes, String noRoute) {}

    private Route route() throws IOException {
        try (FsStack mm = FsStack.open(topology(false), new Policy(Policy.CachedPages.ALLOW));
             SoftwareDevice dev = SoftwareDevice.create(deviceName, mm.topology());
             Vma vma = mm.mmap(file)) {
            DeviceMapping m = vma.ops().deviceMap(vma, new MapRequest(dev.endpoint(), 0, roundUp(size, 4096)));
            try {
                List<long[]> spans = new ArrayList<>();
                io.directmap.mm.Peer device = null;
                long total = 0;
                for (Segment s : m.segments()) {
                    if (!(s instanceof Segment.Direct d)) continue;
                    if (device != null && !device.node().equals(d.peer().node())) {
                        return new Route(device.node().toString(), loopDirectIo(device), List.of(), 0,
                                "the file lies on more than one block device (" + device.node() + ", " + d.peer().node() + ")");
                    }
                    device = d.peer();
                    // Adjacent extents merge into one span: fio's queue drains at each span, DirectMap's does not.
                    long[] last = spans.isEmpty() ? null : spans.getLast();
                    if (last != null && last[0] + last[1] == d.deviceOffset()) last[1] += d.length();
                    else spans.add(new long[] {d.deviceOffset(), d.length()});
                    total += d.length();
                }
                if (device == null) return new Route(null, Optional.empty(), List.of(), 0, "the file has no direct path to a block device (see dmap explain)");
                return new Route(device.node().toString(), loopDirectIo(device), spans, total, null);
            } finally {
                vma.ops().deviceUnmap(vma, dev.endpoint(), m);
            }
        }
    }

    /** For a loop device, whether it reads its backing file with direct I/O; empty for other peers. */
    private static Optional<Boolean> loopDirectIo(io.directmap.mm.Peer peer) {
        if (!(peer instanceof io.directmap.block.BlockDevice device)) return Optional.empty();
        return device.info().loop().map(io.directmap.sys.SysfsBlock.Loop::directIo);
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

    /**
     * Read requests the block device has completed (/sys/class/block/NAME/stat, first field;
     * Documentation/block/stat.rst). Per GiB it tells how large the requests that reached the device
     * were: O_DIRECT into memory whose pages are scattered splits a 4 MiB read at every
     * max_segments pages, into physically contiguous memory only at max_sectors_kb.
     */
    private long deviceReads() {
        return deviceRequests(0);
    }

    /** Write requests the block device has completed (the stat file's fifth field). */
    private long deviceWrites() {
        return deviceRequests(4);
    }

    private long deviceRequests(int field) {
        if (deviceStat == null) return 0;
        try {
            return Long.parseLong(Files.readString(deviceStat).strip().split("\\s+")[field]);
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    private static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    /** Times body; with the CPU it used and what the page cache grew by. */
    private Result measure(String method, String cache, long request, int depth, Body body) throws IOException {
        prepare(cache);
        boolean write = writes(method);
        long cachedBefore = cachedBytes(), requestsBefore = write ? deviceWrites() : deviceReads();
        long cpu0 = cpuNanos(), t0 = System.nanoTime();
        long[] moved = body.run();
        long t = System.nanoTime() - t0, cpu = cpuNanos() - cpu0;
        double gib = moved[0] / (double) (1L << 30);
        return new Result(method, cache, gib / (t / 1e9), cpu / 1e9 / gib, cachedBytes() - cachedBefore, request, depth, moved[0], moved[1],
                (write ? deviceWrites() : deviceReads()) - requestsBefore, null);
    }

    @FunctionalInterface
    private interface Body {
        /** Moves the file; returns {bytes moved, bytes that went direct}. */
        long[] run() throws IOException;
    }

    private Result javaRead(String cache) throws IOException {
        long request = 1L << 20;
        MemorySegment deviceMemory = javaMemory;
        return measure("java-read", cache, request, 1, () -> {
            long at = 0;
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                while (at < size) {
                    ByteBuffer dst = deviceMemory.asSlice(at, Math.min(request, size - at)).asByteBuffer();
                    int n = ch.read(dst, at);
                    if (n <= 0) break;
                    at += n;
                }
            }
            progress.accept(size);
            return new long[] {at, 0};
        });
    }

    private Result javaMmap(String cache) throws IOException {
        long request = 4L << 20;
        try (Arena arena = Arena.ofShared(); FileHandle h = FileHandle.openRead(file)) {
            MemorySegment deviceMemory = javaMemory;
            MemorySegment mapped = io.directmap.sys.Mmap.mapShared(h, size, arena);
            return measure("java-mmap", cache, request, 1, () -> {
                long at = 0;
                for (; at < size; at += Math.min(request, size - at)) {
                    MemorySegment.copy(mapped, at, deviceMemory, at, Math.min(request, size - at));
                }
                progress.accept(size);
                return new long[] {at, 0};
            });
        }
    }

    /** DirectMap: all-direct (cached pages allowed), all-fallback (no peer path), or mixed (the learning policy). */
    private Result directMap(String method, String cache, Setup setup) throws IOException {
        Policy policy = switch (method) {
            case "direct" -> new Policy(Policy.CachedPages.ALLOW);
            case "mixed" -> new Policy(Policy.CachedPages.REFUSE, new PathLearner(machine.evictedPageNanos()));
            default -> Policy.defaults();
        };
        try (FsStack mm = FsStack.open(topology(method.equals("fallback")), policy);
             SoftwareDevice dev = SoftwareDevice.create(deviceName, mm.topology());
             Vma vma = mm.mmap(file)) {
            long window = 64L << 20;
            try (DeviceMemory.Buffer buf = dev.allocate(file.toString(), roundUp(size, 4096))) {
                buf.segment().fill((byte) 0); // as for the Java baselines: memory touched before the timing
                if (method.equals("mixed")) {
                    // The policy learns as it goes: a first pass on this file (not timed) teaches it both paths' speeds.
                    try (Binding warm = dev.bind(vma, 0, roundUp(size, 4096), STRIPE, Set.of(), MapMode.MIXED)) {
                        prepare(cache);
                        for (long at = 0; at < size; at += STRIPE) warm.read(at, Math.min(STRIPE, size - at), buf.segment().asSlice(at), n -> { });
                    }
                    if (System.getenv("DMAP_DEBUG") != null) {
                        var l = policy.learner();
                        status.accept(String.format("learned: direct %.2f, cold cache %.2f, hot cache %.2f GiB/s",
                                l.gibPerS(Transfer.DIRECT), l.gibPerS(Transfer.CACHE_COLD),
                                l.gibPerS(Transfer.CACHE_HOT)));
                    }
                    vma.dropPageMappings(); // the timed pass faults its pages like every other method
                }
                long w = window;
                return measure(method, cache, setup.requestBytes(), dev.queueDepth(), () -> {
                    try (Binding b = dev.bind(vma, 0, roundUp(size, 4096), w, Set.of(), MapMode.MIXED)) {
                        Binding.Read r = b.read(0, size, buf.segment(), progress);
                        return new long[] {r.directBytes() + r.fallbackBytes(), r.directBytes()};
                    }
                });
            }
        }
    }

    /** FileChannel writes of the file's size from native memory, 1 MiB at a time, then force(false): fdatasync. */
    private Result javaWrite(String cache) throws IOException {
        long request = 1L << 20;
        MemorySegment source = writeSource();
        return measure("java-write", cache, request, 1, () -> {
            long at = 0;
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                while (at < size) {
                    ByteBuffer src = source.asSlice(at, Math.min(request, size - at)).asByteBuffer();
                    while (src.hasRemaining()) at += ch.write(src, at);
                }
                ch.force(false);
            }
            progress.accept(size);
            return new long[] {at, 0};
        });
    }

    /**
     * DirectMap's WRITE path: the file mapped for writing, one binding, the whole file written from
     * device memory (direct where granted, through the file system elsewhere), durable.
     */
    private Result directWrite(String cache, Setup setup) throws IOException {
        try (FsStack mm = FsStack.open(topology(false), Policy.defaults());
             SoftwareDevice dev = SoftwareDevice.create(deviceName, mm.topology());
             DeviceMemory.Buffer buf = dev.allocate(file.toString(), roundUp(size, 4096))) {
            MemorySegment.copy(writeSource(), 0, buf.segment(), 0, size);
            return measure("write-direct", cache, setup.requestBytes(), dev.queueDepth(), () -> {
                try (Vma vma = mm.mmapForWrite(file);
                     Binding b = dev.bind(vma, 0, roundUp(size, 4096), 64L << 20, Set.of(io.directmap.mm.MapFlag.WRITE), MapMode.MIXED)) {
                    Binding.Write w = b.write(0, buf.segment().asSlice(0, size), true, progress);
                    return new long[] {w.directBytes() + w.fallbackBytes(), w.directBytes()};
                }
            });
        }
    }

    /** fio writing the file itself with O_DIRECT at DirectMap's request size and depth, then fsync. */
    private Result fioWrite(String cache, Setup setup) throws IOException {
        if (!Commands.available("fio")) return skipped("fio-write", cache, setup, "fio is not installed (apt-get install fio)");
        prepare(cache);
        long cachedBefore = cachedBytes(), requestsBefore = deviceWrites();
        Fio.Outcome o;
        try {
            o = Fio.write(file, size, setup.requestBytes(), setup.depth());
        } catch (IOException e) {
            return skipped("fio-write", cache, setup, "fio failed: " + e.getMessage());
        }
        double gib = o.bytes() / (double) (1L << 30);
        progress.accept(size);
        return new Result("fio-write", cache, gib / o.seconds(), o.cpuSeconds() / gib, cachedBytes() - cachedBefore,
                setup.requestBytes(), setup.depth(), o.bytes(), o.bytes(), deviceWrites() - requestsBefore, null);
    }

    /** What java-write and write-direct write: seeded bytes, made once per run (the same bytes for both). */
    private MemorySegment writeSource() {
        return writeSource;
    }

    /** A fresh topology of the machine (each address space registers its own endpoints); noPeerPath: with no peer path from the device. */
    private Topology topology(boolean noPeerPath) throws IOException {
        String rules = machine.topologyRules();
        if (!noPeerPath) return rules.isEmpty() ? Topology.defaults() : Topology.parse(rules, machine.topologySource());
        String fallback = "no-p2p " + deviceName + " *";
        return rules.isEmpty() ? Topology.parse(fallback, "fallback") : Topology.parse(rules + "\n" + fallback, machine.topologySource() + " + fallback");
    }

    /** fio on the block device, reading the spans DirectMap reads (see {@link Fio} for why spans). */
    private Result fioRanges(String cache, Route route, Setup setup) throws IOException {
        if (route.noRoute() != null) return skipped("fio-ranges", cache, setup, route.noRoute());
        return fio("fio-ranges", cache, setup, Path.of(route.device()), route.spans());
    }

    /** fio on the file itself with O_DIRECT: what a user would run to see what the disk gives. */
    private Result fioFile(String cache, Setup setup) throws IOException {
        return fio("fio-file", cache, setup, file, List.<long[]>of(new long[] {0, size}));
    }

    private Result fio(String method, String cache, Setup setup, Path target, List<long[]> spans) throws IOException {
        if (!Commands.available("fio")) return skipped(method, cache, setup, "fio is not installed (apt-get install fio)");
        prepare(cache);
        long cachedBefore = cachedBytes(), requestsBefore = deviceReads();
        Fio.Outcome o;
        try {
            o = Fio.read(target, spans, setup.requestBytes(), setup.depth());
        } catch (IOException e) {
            return skipped(method, cache, setup, "fio failed: " + e.getMessage());
        }
        double gib = o.bytes() / (double) (1L << 30);
        progress.accept(size);
        return new Result(method, cache, gib / o.seconds(), o.cpuSeconds() / gib, cachedBytes() - cachedBefore,
                setup.requestBytes(), setup.depth(), o.bytes(), o.bytes(), deviceReads() - requestsBefore, null);
    }

    private static Result skipped(String method, String cache, Setup setup, String why) {
        return new Result(method, cache, Double.NaN, Double.NaN, 0, setup.requestBytes(), setup.depth(), 0, 0, 0, why);
    }

    private static long roundUp(long v, long to) {
        return (v + to - 1) / to * to;
    }

    /** The report as the --json schema has it: the setup, then one row per cache and method with its ratios. */
    public static Map<String, Object> toJson(Report report) {
        Setup s = report.setup();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("file", s.file().toString());
        out.put("bytes", s.size());
        out.put("device", s.device());
        out.put("loop_direct_io", s.loopDirectIo().orElse(null));
        out.put("device_spans", s.spans());
        out.put("request_bytes", s.requestBytes());
        out.put("depth", s.depth());
        out.put("repeat", s.repeat());
        out.put("order_seed", s.seed());
        List<Object> rows = new ArrayList<>();
        for (Row r : report.rows()) {
            Result m = r.medianRun();
            Map<String, Object> j = new LinkedHashMap<>();
            j.put("method", r.method());
            j.put("cache", r.cache());
            j.put("gib_per_s", r.ran() ? round(r.median()) : null);
            j.put("gib_per_s_min", r.ran() ? round(r.min()) : null);
            j.put("gib_per_s_max", r.ran() ? round(r.max()) : null);
            j.put("gib_per_s_runs", r.ran() ? r.runs().stream().map(x -> round(x.gibPerS())).toList() : List.of());
            j.put("cpu_s_per_gib", r.ran() ? round(m.cpuSPerGib()) : null);
            j.put("cache_growth_bytes", m.cacheGrowthBytes());
            j.put("bytes_read", m.bytesRead());
            j.put("device_requests", m.deviceRequests());
            j.put("request_bytes", m.requestBytes());
            j.put("depth", m.depth());
            j.put("vs_fio_ranges", ratio(r, row(report.rows(), "fio-ranges", r.cache())));
            j.put("vs_fio_file", ratio(r, row(report.rows(), "fio-file", r.cache())));
            j.put("vs_best_java", ratio(r, bestJava(report.rows(), r.cache())));
            j.put("vs_fio_write", writes(r.method()) ? ratio(r, row(report.rows(), "fio-write", r.cache())) : null);
            j.put("vs_java_write", writes(r.method()) ? ratio(r, row(report.rows(), "java-write", r.cache())) : null);
            if (!r.ran()) j.put("skipped", r.skipped());
            rows.add(j);
        }
        out.put("results", rows);
        return out;
    }

    public static Optional<Row> row(List<Row> rows, String method, String cache) {
        return rows.stream().filter(x -> x.method().equals(method) && x.cache().equals(cache) && x.ran()).findFirst();
    }

    public static Optional<Row> bestJava(List<Row> rows, String cache) {
        return rows.stream().filter(x -> x.method().startsWith("java-") && !writes(x.method()) && x.cache().equals(cache) && x.ran())
                .max(Comparator.comparingDouble(Row::median));
    }

    /** The ratio of medians, both measured in this run. */
    public static Double ratio(Row r, Optional<Row> base) {
        return r.ran() && base.isPresent() ? round(r.median() / base.get().median()) : null;
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}
