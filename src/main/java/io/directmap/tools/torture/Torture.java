package io.directmap.tools.torture;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.InvalidationReport;
import io.directmap.lang.Xorshift;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapMode;
import io.directmap.mm.Vma;
import io.directmap.tools.Commands;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * The coherence torture: software devices read a mapped file over and over while other
 * processes (dd, xfs_io, fallocate, e4defrag, xfs_fsr, btrfs) write, punch, truncate, extend and
 * relocate it. Every write stamps its blocks with a version; every block a device reads is checked
 * against the history: its version must be one the file held at some moment during the read
 * (not stale), and the block must be one whole version (not torn). A zero block is version 0.
 *
 * <p>Runs as root, so the tools get argument lists, never a shell, and reach the file by a path
 * in a {@link TrustedDirectory}: nobody but root and the caller can swap what that path names
 * while they run (checked again by inode before each change).
 */
public final class Torture {
    public static final int BLOCK = 4096;
    /** Every kind of change runs at least this many times, however fast the reads are. */
    static final int MIN_ROUNDS = 3;
    static final Duration TIME_LIMIT = Duration.ofMinutes(2);
    private static final long MAGIC = 0x5352455650414d44L; // "DMAPVERS"

    /** What other processes do to the file. */
    public enum Op {
        DD_BUFFERED, DD_DIRECT, XFS_IO_PWRITE, PUNCH, ZERO_RANGE, TRUNCATE_EXTEND, RELOCATE, EVICT
    }

    /**
     * How long a run goes on: each device makes readsPerDevice reads, and the writer makes at least
     * minRounds rounds of every change; past timeLimit the readers stop and say so (a problem).
     */
    public record Limits(long readsPerDevice, int minRounds, Duration timeLimit) {
        public static Limits reads(long readsPerDevice) {
            return new Limits(readsPerDevice, MIN_ROUNDS, TIME_LIMIT);
        }
    }

    /** The outcome, for the test to assert and for people to read. */
    public record Summary(String fsType, String heldBackBy, long reads, long blocksChecked, long stale, long torn, long directBytes,
                          long fallbackBytes, Map<Op, Integer> ops, Relocator.Relocations relocations, long invalidations, long refaults,
                          long retries, long incoherentReads, List<Long> ackNanos, Spread readBytes, Spread readNanos,
                          List<String> problems, long readErrors, List<String> readErrorMessages, double seconds) {
        /** No stale or torn block, no read that failed, and nothing else went wrong. */
        public boolean passed() {
            return stale == 0 && torn == 0 && problems.isEmpty() && readErrors == 0;
        }

        public String render() {
            Spread ack = Spread.of(ackNanos);
            String acks = ack.count() == 0 ? "none" : String.format("p50 %.0f µs, p99 %.0f µs, max %.0f µs (%d)",
                    ack.p50() / 1e3, ack.p99() / 1e3, ack.max() / 1e3, ack.count());
            return String.format("""
                    %s: %d device reads in %.1f s, %d blocks checked: %d stale, %d torn
                      changes held back by %s
                      each read: p50 %s, p99 %s; its check window (start to end of the read): p50 %.0f µs, p99 %.0f µs
                      read direct %s, through the page cache %s
                      changes by other processes: %s
                      relocations: %s
                      invalidations %d, re-faults %d, reads retried %d, reads while a writer held the file %d
                      change -> devices let go (change held back to last ack): %s
                      reads that failed with an error (not checked, the device said so): %d%s
                    """, fsType, reads, seconds, blocksChecked, stale, torn, heldBackBy, io.directmap.sys.Units.bytes(readBytes.p50()),
                    io.directmap.sys.Units.bytes(readBytes.p99()), readNanos.p50() / 1e3, readNanos.p99() / 1e3,
                    io.directmap.sys.Units.bytes(directBytes), io.directmap.sys.Units.bytes(fallbackBytes), ops,
                    relocations.render(), invalidations, refaults, retries, incoherentReads, acks, readErrors,
                    readErrorMessages.isEmpty() ? "" : ", first: " + readErrorMessages.getFirst());
        }

        /** The fields a program reads (dmap torture --json). */
        public Map<String, Object> json() {
            Map<String, Object> opCounts = new java.util.LinkedHashMap<>();
            for (Op op : Op.values()) opCounts.put(op.name().toLowerCase(java.util.Locale.ROOT), ops.getOrDefault(op, 0));
            return jsonMap("fs", fsType, "held_back_by", heldBackBy, "reads", reads, "seconds", seconds, "blocks_checked", blocksChecked, "stale", stale,
                    "torn", torn, "read_bytes", readBytes.json(), "read_window_ns", readNanos.json(), "direct_bytes", directBytes,
                    "fallback_bytes", fallbackBytes, "changes", opCounts, "relocations", relocations.json(),
                    "invalidations", invalidations, "refaults", refaults, "retries", retries, "incoherent_reads", incoherentReads,
                    "let_go_ns", Spread.of(ackNanos).json(), "read_errors", readErrors,
                    "read_error_messages", readErrorMessages, "problems", problems);
        }
    }

    static Map<String, Object> jsonMap(Object... kv) {
        Map<String, Object> m = new java.util.LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    private record Version(long version, long startNanos, long endNanos) {}

    private final Path file;
    private final int blocks;
    private final String fsType;
    private final List<List<Version>> history = new ArrayList<>();
    private final AtomicLong nextVersion = new AtomicLong(1);
    private final Path stampDir;
    private final Relocator relocator;
    private Object identity; // the file's (dev, inode) once written: the tools must find this file, no other

    /**
     * file: the file to torture (made or overwritten here), in a directory that passes
     * {@link TrustedDirectory#require}; blocks: its length in 4 KiB blocks.
     */
    public Torture(Path file, int blocks, String fsType) throws IOException {
        Path dir = TrustedDirectory.require(file.toAbsolutePath().getParent());
        this.file = dir.resolve(file.getFileName());
        this.blocks = blocks;
        this.fsType = fsType;
        this.relocator = new Relocator(fsType);
        this.stampDir = Files.createTempDirectory("dmap-torture");
        for (int b = 0; b < blocks; b++) history.add(new ArrayList<>());
    }

    /** {@link #run(FsStack, List, Limits, long, Consumer)} with the default rounds and time limit. */
    public Summary run(FsStack mm, List<SoftwareDevice> devices, long readsPerDevice, long seed,
                       Consumer<String> progress) throws IOException, InterruptedException {
        return run(mm, devices, Limits.reads(readsPerDevice), seed, progress);
    }

    /**
     * Writes version 1 of every block and evicts it; then runs readers on the devices until each
     * has made its reads (and the writer its rounds), while one thread runs other processes against
     * the file. Returns when every thread it started has ended and every binding is closed.
     */
    public Summary run(FsStack mm, List<SoftwareDevice> devices, Limits limits, long seed,
                       Consumer<String> progress) throws IOException, InterruptedException {
        long t0 = System.nanoTime();
        writeInitial();
        List<Long> acks = Collections.synchronizedList(new ArrayList<>());
        Consumer<InvalidationReport> listener = r -> {
            if (r.invalidation().heldBackChange() && r.mappings() > 0) acks.add(r.ackNanos());
        };
        mm.fs().addInvalidationListener(listener);
        Map<Op, Integer> ops = Collections.synchronizedMap(new EnumMap<>(Op.class));
        ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
        AtomicLong checked = new AtomicLong(), stale = new AtomicLong(), torn = new AtomicLong(), readErrors = new AtomicLong();
        ConcurrentLinkedQueue<String> readErrorMessages = new ConcurrentLinkedQueue<>();
        AtomicBoolean stop = new AtomicBoolean();
        List<Binding> bindings = new ArrayList<>();
        Spread.Samples readBytes = new Spread.Samples(), readNanos = new Spread.Samples();
        List<Thread> threads = new ArrayList<>();
        String heldBackBy = "?";
        try (Vma vma = mm.mmap(file)) {
            try {
                for (SoftwareDevice d : devices) {
                    bindings.add(d.bind(vma, 0, (long) blocks * BLOCK, 1L << 20, Set.of(), MapMode.MIXED)
                            .coherentWait(Duration.ofSeconds(30)));
                }
                AtomicLong rounds = new AtomicLong();
                Thread writer = Thread.ofPlatform().name("torture-writer").start(() -> {
                    Xorshift rnd = Xorshift.seeded(seed);
                    List<Op> round = new ArrayList<>(List.of(Op.values()));
                    round.remove(Op.EVICT);
                    while (!stop.get()) {
                        rnd.shuffle(round);
                        for (Op op : round) {
                            if (stop.get()) return;
                            try {
                                if (rnd.nextBoolean()) {
                                    // Evict often (dropping our own page-table entries first), so the devices keep
                                    // finding cold ranges to read directly.
                                    vma.dropPageMappings();
                                    change(Op.EVICT, rnd);
                                    ops.merge(Op.EVICT, 1, Integer::sum);
                                }
                                long c0 = System.nanoTime();
                                change(op, rnd);
                                ops.merge(op, 1, Integer::sum);
                                long took = (System.nanoTime() - c0) / 1_000_000;
                                if (took > 1000) progress.accept(op + " took " + took + " ms");
                                Thread.sleep(2 + rnd.nextInt(10));
                            } catch (IOException | RuntimeException e) {
                                problems.add("writer: " + op + ": " + e.getMessage());
                                if (problems.size() > 20) stop.set(true);
                            } catch (InterruptedException e) {
                                return;
                            }
                        }
                        rounds.incrementAndGet();
                    }
                });
                threads.add(writer);
                for (int i = 0; i < bindings.size(); i++) {
                    Binding b = bindings.get(i);
                    long readerSeed = seed * 31 + i;
                    threads.add(Thread.ofPlatform().name("torture-reader-" + i).start(() -> {
                        Xorshift rnd = Xorshift.seeded(readerSeed);
                        try (DeviceMemory.Buffer buf = b.device().allocate(file.toString(), 32L * BLOCK)) {
                            long deadline = System.nanoTime() + limits.timeLimit().toNanos();
                            for (long n = 0; (n < limits.readsPerDevice() || rounds.get() < limits.minRounds()) && !stop.get(); n++) {
                                if (System.nanoTime() > deadline) {
                                    problems.add(b.device().name() + ": not done after " + limits.timeLimit() + " (" + n + " reads, "
                                            + rounds.get() + " rounds of changes)");
                                    break;
                                }
                                int count = 1 + rnd.nextInt(32);
                                int first = rnd.nextInt(blocks - count + 1);
                                long r0 = System.nanoTime();
                                try {
                                    b.read((long) first * BLOCK, (long) count * BLOCK, buf.segment(), x -> { });
                                } catch (io.directmap.device.DmaInFlightException e) {
                                    throw e;   // its memory is set aside: this reader cannot go on
                                } catch (IOException e) {
                                    // The device reported the failure (EIO, a short read): nothing was delivered, nothing to check.
                                    readErrors.incrementAndGet();
                                    if (readErrorMessages.size() < 5) readErrorMessages.add(b.device().name() + ": " + e.getMessage());
                                    continue;
                                }
                                long r1 = System.nanoTime();
                                readBytes.add((long) count * BLOCK);
                                readNanos.add(r1 - r0);
                                for (int k = 0; k < count; k++) {
                                    String bad = check(buf.segment().asSlice((long) k * BLOCK, BLOCK), first + k, r0, r1);
                                    checked.incrementAndGet();
                                    if (bad == null) continue;
                                    (bad.startsWith("torn") ? torn : stale).incrementAndGet();
                                    if (problems.size() < 20) problems.add(b.device().name() + ": " + bad);
                                }
                                if (n % 1000 == 0) progress.accept(b.device().name() + ": " + n + " reads");
                            }
                        } catch (IOException | RuntimeException | Error e) {
                            // An Error too (a StackOverflowError once killed a reader silently: fewer reads, no problem said).
                            problems.add(b.device().name() + ": " + e);
                        }
                    }));
                }
                for (Thread r : threads.subList(1, threads.size())) r.join();
                heldBackBy = mm.fs().changesHeardBy(file);
            } finally {
                // The writer may be in madvise on this vma (dropPageMappings): every thread stops
                // before the vma is unmapped, or closing its arena fails and the mapping stays.
                stop.set(true);
                joinAll(threads);
            }
        } finally {
            // However this ends (a bind failed, we were interrupted), every thread has stopped (the
            // inner finally joined them) before the bindings close and the stamps go.
            mm.fs().removeInvalidationListener(listener);
            for (Binding b : bindings) b.close();
            deleteStamps();
        }
        long reads = 0, direct = 0, fallback = 0, inval = 0, refaults = 0, retries = 0, incoherent = 0;
        for (Binding b : bindings) {
            reads += b.reads();
            direct += b.directBytes();
            fallback += b.fallbackBytes();
            inval += b.invalidations();
            refaults += b.refaults();
            retries += b.retries();
            incoherent += b.incoherentReads();
        }
        return new Summary(fsType, heldBackBy, reads, checked.get(), stale.get(), torn.get(), direct, fallback, Map.copyOf(ops),
                relocator.result(), inval, refaults, retries, incoherent, List.copyOf(acks), Spread.of(readBytes.toArray()),
                Spread.of(readNanos.toArray()), List.copyOf(problems), readErrors.get(), List.copyOf(readErrorMessages),
                (System.nanoTime() - t0) / 1e9);
    }

    /** Joins every thread, interrupting them if this thread is interrupted meanwhile, and keeps the interrupt. */
    private static void joinAll(List<Thread> threads) {
        boolean interrupted = false;
        for (Thread t : threads) {
            while (t.isAlive()) {
                try {
                    t.join();
                } catch (InterruptedException e) {
                    interrupted = true;
                    threads.forEach(Thread::interrupt);
                }
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    /**
     * How fast a device reads while nobody writes, and while another process writes 1% of the file
     * per second: GiB/s, the share of the bytes read directly, and how long the devices took to let
     * go of what each held-back change overlapped (the change waited that long).
     */
    public record Throughput(long fileBytes, String heldBackBy, double quietGiBs, double quietDirectShare, double writtenGiBs,
                             double writtenDirectShare, long writes, long invalidations, List<Long> ackNanos) {
        /** The share of the reader's own no-write throughput it kept while the file was written. */
        public double kept() {
            return quietGiBs > 0 ? writtenGiBs / quietGiBs : 0;
        }

        public String render() {
            Spread ack = Spread.of(ackNanos);
            return String.format("""
                    reading %s over and over, 4 MiB reads, 8 MiB windows; changes held back by %s:
                      alone:                                      %.2f GiB/s, %.1f%% direct
                      while dd writes 1%% of the file per second: %.2f GiB/s, %.1f%% direct (%.0f%% kept; %d writes, %d windows taken back)
                      change -> devices let go: p50 %.2f ms, p99 %.2f ms (%d changes that took a mapping back)
                    """, io.directmap.sys.Units.bytes(fileBytes), heldBackBy, quietGiBs, 100 * quietDirectShare, writtenGiBs,
                    100 * writtenDirectShare, 100 * kept(), writes, invalidations, ack.p50() / 1e6, ack.p99() / 1e6, ack.count());
        }

        public Map<String, Object> json() {
            return jsonMap("file_bytes", fileBytes, "held_back_by", heldBackBy, "alone_gib_per_s", quietGiBs,
                    "alone_direct_share", quietDirectShare, "while_written_gib_per_s", writtenGiBs,
                    "while_written_direct_share", writtenDirectShare, "kept", kept(), "writes", writes,
                    "invalidations", invalidations, "let_go_ns", Spread.of(ackNanos).json());
        }
    }

    /** How long one slice of a throughput phase lasts: alone and written slices alternate, so load that drifts hits both alike. */
    static final double SLICE_SECONDS = 0.5;

    /**
     * Reads the whole file sequentially with one device, in slices of {@value #SLICE_SECONDS} s that
     * alternate: alone, then while a writer process (dd, buffered) writes 0.1% of the file at a
     * random place every 100 ms (1% a second), seconds of each in all. Alternating, rather than one
     * phase after the other, keeps a busy machine's changing load from favouring either.
     */
    public static Throughput throughput(FsStack mm, SoftwareDevice dev, Path file, double seconds, long seed)
            throws IOException, InterruptedException {
        long size = Files.size(file) / (4L << 20) * (4L << 20);
        if (size == 0) throw new io.directmap.mm.InvalidRequestException(file + ": needs at least 4 MiB to measure throughput");
        List<Long> acks = Collections.synchronizedList(new ArrayList<>());
        AtomicBoolean writing = new AtomicBoolean();
        Consumer<InvalidationReport> listener = r -> {
            if (writing.get() && r.invalidation().heldBackChange() && r.mappings() > 0) acks.add(r.ackNanos());
        };
        try (Vma vma = mm.mmap(file);
             Binding b = dev.bind(vma, 0, size, 8L << 20, Set.of(), MapMode.MIXED).coherentWait(Duration.ofSeconds(30));
             DeviceMemory.Buffer buf = dev.allocate(file.toString(), 4L << 20)) {
            vma.dropPageMappings();
            Workloads.syncAndEvict(file);
            mm.fs().addInvalidationListener(listener);
            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong writes = new AtomicLong();
            Thread writer = Thread.ofPlatform().name("one-percent-writer").start(() -> {
                Xorshift rnd = Xorshift.seeded(seed);
                long blocks = Math.max(1, size / 1000 / BLOCK);
                while (!stop.get()) {
                    try {
                        if (!writing.get()) {
                            Thread.sleep(5);
                            continue;
                        }
                        long at = rnd.nextLong(size / BLOCK - blocks + 1);
                        Commands.run("dd", "if=/dev/urandom", "of=" + file, "bs=" + BLOCK, "seek=" + at, "count=" + blocks,
                                "conv=notrunc", "status=none");
                        writes.incrementAndGet();
                        Thread.sleep(100);
                    } catch (IOException | InterruptedException e) {
                        return;
                    }
                }
            });
            // [alone, written] x {bytes, nanos, direct bytes, fallback bytes, invalidations}
            long[][] sums = new long[2][5];
            try {
                long at = 0;
                int slices = Math.max(1, (int) Math.round(seconds / SLICE_SECONDS));
                for (int i = 0; i < 2 * slices; i++) {
                    int phase = i % 2;
                    // The writer stops between its writes, so a written slice may end while a dd runs: it is counted there.
                    writing.set(phase == 1);
                    long d0 = b.directBytes(), f0 = b.fallbackBytes(), inv0 = b.invalidations(), t0 = System.nanoTime();
                    long bytes = 0, chunk = 4L << 20, until = t0 + (long) (SLICE_SECONDS * 1e9);
                    for (; System.nanoTime() < until; at = (at + chunk) % size) {
                        b.read(at, chunk, buf.segment(), n -> { });
                        bytes += chunk;
                    }
                    long[] sum = sums[phase];
                    sum[0] += bytes;
                    sum[1] += System.nanoTime() - t0;
                    sum[2] += b.directBytes() - d0;
                    sum[3] += b.fallbackBytes() - f0;
                    sum[4] += b.invalidations() - inv0;
                }
            } finally {
                writing.set(false);
                stop.set(true);
                writer.join();
                mm.fs().removeInvalidationListener(listener);
            }
            return new Throughput(size, mm.fs().changesHeardBy(file), gibPerS(sums[0]), share(sums[0][2], sums[0][3]),
                    gibPerS(sums[1]), share(sums[1][2], sums[1][3]), writes.get(), sums[1][4], List.copyOf(acks));
        }
    }

    private static double gibPerS(long[] sum) {
        return sum[1] == 0 ? 0 : sum[0] / (sum[1] / 1e9) / (1L << 30);
    }

    private static double share(long direct, long fallback) {
        return direct + fallback == 0 ? 0 : direct / (double) (direct + fallback);
    }

    private void writeInitial() throws IOException {
        long v = nextVersion.getAndIncrement();
        ByteBuffer buf = ByteBuffer.allocateDirect(BLOCK).order(ByteOrder.LITTLE_ENDIAN);
        long now = System.nanoTime();
        // O_NOFOLLOW: the name is the file or nothing, never a link to somewhere else.
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING, LinkOption.NOFOLLOW_LINKS)) {
            for (int b = 0; b < blocks; b++) {
                stamp(buf, b, v);
                while (buf.hasRemaining()) ch.write(buf, (long) b * BLOCK + buf.position());
                history.get(b).add(new Version(v, now, now));
            }
        }
        identity = Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
        Workloads.syncAndEvict(file);
    }

    /** Before a tool gets the path: it must still name the file written here (the same dev and inode). */
    private void requireSameFile() throws IOException {
        var now = Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        if (!now.isRegularFile() || !now.fileKey().equals(identity)) {
            throw new IOException(file + " is no longer the file the torture wrote (was " + identity + ", now " + now.fileKey()
                    + "): something replaced it; stopping before a tool writes to whatever it is now");
        }
    }

    /** One change by another process; the history records the versions it may have left. */
    private Op change(Op op, Xorshift rnd) throws IOException {
        if (op == Op.XFS_IO_PWRITE && (!Commands.available("xfs_io") || stampDir.toString().matches(".*[\\s'\"].*"))) {
            op = Op.DD_BUFFERED; // xfs_io splits its -c command at spaces: the stamp's path goes there
        }
        if (op != Op.EVICT) requireSameFile();
        int count = 1 + rnd.nextInt(16);
        int first = rnd.nextInt(blocks - count + 1);
        String f = file.toString();
        String off = Long.toString((long) first * BLOCK), len = Long.toString((long) count * BLOCK);
        switch (op) {
            case DD_BUFFERED, DD_DIRECT, XFS_IO_PWRITE -> {
                long v = nextVersion.getAndIncrement();
                Path stamp = stampFile(first, count, v);
                List<String> cmd = switch (op) {
                    case DD_BUFFERED -> List.of("dd", "if=" + stamp, "of=" + f, "bs=" + BLOCK, "seek=" + first, "count=" + count,
                            "conv=notrunc" + (rnd.nextBoolean() ? ",fsync" : ""), "status=none");
                    case DD_DIRECT -> List.of("dd", "if=" + stamp, "of=" + f, "bs=" + BLOCK, "seek=" + first, "count=" + count,
                            "conv=notrunc", "oflag=direct", "status=none");
                    default -> List.of("xfs_io", "-c", "pwrite -q -i " + stamp + " -s 0 " + off + " " + len, f);
                };
                runRecorded(cmd, first, count, v);
                Files.delete(stamp);
            }
            case PUNCH -> runRecorded(List.of("fallocate", "-p", "-o", off, "-l", len, f), first, count, 0);
            case ZERO_RANGE -> runRecorded(List.of("fallocate", "-z", "-o", off, "-l", len, f), first, count, 0);
            case TRUNCATE_EXTEND -> {
                // Cut the last count blocks off and grow back: they read as zeros (a hole).
                long size = (long) blocks * BLOCK;
                long cut = size - (long) count * BLOCK;
                runRecorded(List.of("xfs_io", "-c", "truncate " + cut, "-c", "truncate " + size, f), blocks - count, count, 0);
            }
            case RELOCATE -> relocator.run(file, (long) blocks * BLOCK);
            case EVICT -> Workloads.syncAndEvict(file);
        }
        return op;
    }

    /** Runs cmd; blocks [first, first+count) hold version v from the start of the process, for sure from its end. */
    private void runRecorded(List<String> cmd, int first, int count, long v) throws IOException {
        long start = System.nanoTime();
        synchronized (history) {
            // Pending until the process ends: the new version may show from its start, the old one until its end.
            for (int b = first; b < first + count; b++) history.get(b).add(new Version(v, start, Long.MAX_VALUE));
        }
        try {
            Commands.run(cmd);
        } finally {
            long end = System.nanoTime();
            synchronized (history) {
                for (int b = first; b < first + count; b++) history.get(b).set(history.get(b).size() - 1, new Version(v, start, end));
            }
        }
    }

    /** null if the block is one whole version the file held at some moment in [r0, r1]; else what is wrong. */
    private String check(MemorySegment block, int index, long r0, long r1) {
        long magic = block.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
        long v;
        if (magic == 0) {
            if (block.asSlice(0, BLOCK).elements(ValueLayout.JAVA_LONG).anyMatch(s -> s.get(ValueLayout.JAVA_LONG, 0) != 0)) {
                return "torn block " + index + ": part zeros, part data";
            }
            v = 0;
        } else {
            if (magic != MAGIC) return "torn block " + index + ": no version header";
            long at = block.get(ValueLayout.JAVA_LONG_UNALIGNED, 8);
            v = block.get(ValueLayout.JAVA_LONG_UNALIGNED, 16);
            if (at != index) return "stale block " + index + ": holds block " + at + "'s data (version " + v + ")";
            Xorshift expected = Xorshift.fromState(fillSeed(index, v));
            for (int i = 24; i < BLOCK; i += 8) {
                if (block.get(ValueLayout.JAVA_LONG_UNALIGNED, i) != expected.nextLong()) return "torn block " + index + ": version " + v + " differs at byte " + i;
            }
        }
        synchronized (history) {
            List<Version> h = history.get(index);
            for (int i = 0; i < h.size(); i++) {
                Version e = h.get(i);
                if (e.version() != v || e.startNanos() > r1) continue;
                Version next = i + 1 < h.size() ? h.get(i + 1) : null;
                if (next == null || next.endNanos() >= r0) return null;
            }
            return "stale block " + index + ": version " + v + " read in [" + r0 + ", " + r1 + "], history " + h;
        }
    }

    private Path stampFile(int first, int count, long v) throws IOException {
        Path p = stampDir.resolve("v" + v);
        ByteBuffer buf = ByteBuffer.allocate(BLOCK).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            for (int b = first; b < first + count; b++) {
                stamp(buf, b, v);
                while (buf.hasRemaining()) ch.write(buf);
            }
        }
        return p;
    }

    private static void stamp(ByteBuffer buf, int index, long v) {
        buf.clear();
        buf.putLong(MAGIC).putLong(index).putLong(v);
        Xorshift.fromState(fillSeed(index, v)).fill(MemorySegment.ofBuffer(buf));   // the rest of the block
        buf.rewind();
    }

    private static long fillSeed(long index, long v) {
        return (index * 0x9E3779B97F4A7C15L) ^ (v * 0xC2B2AE3D27D4EB4FL) | 1;
    }

    private void deleteStamps() throws IOException {
        try (var s = Files.list(stampDir)) {
            for (Path p : s.toList()) Files.deleteIfExists(p);
        }
        Files.deleteIfExists(stampDir);
    }
}
