package io.directmap.device;

import io.directmap.device.IommuTable.Entry;
import io.directmap.device.IommuTable.Target;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import io.directmap.fs.PathLearner;
import io.directmap.sys.IoUring;
import io.directmap.sys.SysException;
import java.util.function.LongConsumer;

/**
 * The software device's DMA engine: moves the bytes of programmed table entries into device
 * memory, queueDepth requests in flight. A peer entry is read from the block device with O_DIRECT
 * (the page cache is never touched); a host entry is copied from page-cache pages, faulting them
 * in. Platform threads, because a blocking native read pins a virtual thread's carrier anyway.
 */
final class DmaEngine implements AutoCloseable {
    static final long PEER_REQUEST = 4L << 20, HOST_REQUEST = 2L << 20, MIN_REQUEST = 256L << 10;

    private final ExecutorService workers;
    private final int depth;
    private final java.util.concurrent.ConcurrentLinkedQueue<IoUring> rings = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private final boolean ringsAvailable;

    DmaEngine(String device, int depth) {
        this.depth = depth;
        this.workers = Executors.newFixedThreadPool(depth, Thread.ofPlatform().daemon().name(device + "-dma-", 0).factory());
        var first = "off".equals(System.getenv("DMAP_IO_URING")) ? java.util.Optional.<IoUring>empty()
                : IoUring.tryOpen(Integer.highestOneBit(Math.max(1, depth - 1)) * 2);
        first.ifPresent(rings::add);
        this.ringsAvailable = first.isPresent();
    }

    int depth() { return depth; }

    /** Bytes and request time by way (direct, page cache hot or cold): what the learning policy is fed. */
    static final class Stats {
        final LongAdder[] bytes = {new LongAdder(), new LongAdder(), new LongAdder()};
        final LongAdder[] nanos = {new LongAdder(), new LongAdder(), new LongAdder()};

        void add(PathLearner.Way way, long n, long ns) {
            if (way == null) return;
            bytes[way.ordinal()].add(n);
            nanos[way.ordinal()].add(ns);
        }
    }

    /** Transfers every entry into memory; progress gets the bytes done so far after each request. */
    void transfer(List<Entry> entries, MemorySegment memory, LongConsumer progress) throws IOException {
        transfer(entries, memory, progress, new Stats());
    }

    /**
     * As above, adding each request's bytes and time to stats. Peer reads go through an io_uring,
     * depth of them in flight from this thread (as fio does), where the system has io_uring; host
     * copies, and peer reads where it has none, go to the worker threads.
     */
    void transfer(List<Entry> entries, MemorySegment memory, LongConsumer progress, Stats stats) throws IOException {
        List<Future<?>> inFlight = new ArrayList<>();
        List<PeerRead> peer = new ArrayList<>();
        AtomicLong done = new AtomicLong();
        // Large requests for large transfers; for small ones, smaller requests so that depth of them
        // are still in flight (an 8 MiB read is 8 requests of 1 MiB, not 2 of 4 MiB).
        long peerBytes = 0, hostBytes = 0;
        for (Entry e : entries) {
            if (e.target() instanceof Target.Peer) peerBytes += e.length(); else hostBytes += e.length();
        }
        long peerRequest = requestSize(peerBytes, PEER_REQUEST), hostRequest = requestSize(hostBytes, HOST_REQUEST);
        for (Entry e : entries) {
            long request = e.target() instanceof Target.Peer ? peerRequest : hostRequest;
            for (long off = 0; off < e.length(); off += request) {
                long o = off, n = Math.min(request, e.length() - off);
                if (e.target() instanceof Target.Peer p && ringsAvailable) {
                    peer.add(PeerRead.of(p, e.memoryOffset() + o, o, n, memory));
                    continue;
                }
                PathLearner.Way way = e.target() instanceof Target.HostPages h ? h.way() : PathLearner.Way.DIRECT;
                inFlight.add(workers.submit(() -> {
                    long t0 = System.nanoTime();
                    move(e, o, n, memory);
                    stats.add(way, n, System.nanoTime() - t0);
                    progress.accept(done.addAndGet(n));
                    return null;
                }));
            }
        }
        IOException failure = null;
        if (!peer.isEmpty()) {
            try {
                readThroughRing(peer, progress, done, stats);
            } catch (IOException e) {
                failure = e;
            }
        }
        for (Future<?> f : inFlight) {
            try {
                f.get();
            } catch (ExecutionException ex) {
                IOException io = ex.getCause() instanceof IOException i ? i : new IOException("DMA failed: " + ex.getCause(), ex.getCause());
                if (failure == null) {
                    failure = io;
                    inFlight.forEach(x -> x.cancel(false));
                } else if (failure != io) {
                    failure.addSuppressed(io);
                }
            } catch (java.util.concurrent.CancellationException ignored) {
                // cancelled after an earlier failure
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
                inFlight.forEach(x -> x.cancel(false));
                throw new IOException("interrupted during DMA", ex);
            }
        }
        if (failure != null) throw failure;
    }

    private long requestSize(long total, long largest) {
        long r = Math.min(largest, Math.max(MIN_REQUEST, total / depth));
        return Long.highestOneBit(r);
    }

    /** One O_DIRECT read of a peer entry: n bytes wanted, whole logical blocks read into dst. */
    private record PeerRead(io.directmap.block.BlockDevice device, long deviceOffset, long n, MemorySegment dst) {
        static PeerRead of(Target.Peer p, long memoryOffset, long off, long n, MemorySegment memory) {
            int lbs = p.device().geometry().logicalBlockSize();
            long len = Math.min((n + lbs - 1) / lbs * lbs, memory.byteSize() - memoryOffset);
            return new PeerRead(p.device(), p.deviceOffset() + off, n, memory.asSlice(memoryOffset, len));
        }
    }

    /**
     * Keeps depth reads in flight through a ring until all are done. On a failure it stops
     * submitting, waits for what is in flight (it writes into device memory), then throws.
     */
    private void readThroughRing(List<PeerRead> reads, LongConsumer progress, AtomicLong done, Stats stats) throws IOException {
        IoUring ring = rings.poll();
        if (ring == null) ring = IoUring.open(Integer.highestOneBit(Math.max(1, depth - 1)) * 2);
        IOException failure = null;
        try {
            long[] started = new long[reads.size()];
            int next = 0, flying = 0;
            while ((next < reads.size() && failure == null) || flying > 0) {
                while (failure == null && next < reads.size() && flying < depth) {
                    PeerRead r = reads.get(next);
                    if (!ring.prepareRead(r.device().directHandle(), r.dst(), r.deviceOffset(), next)) break;
                    started[next++] = System.nanoTime();
                    flying++;
                }
                ring.submitAndWait(1);
                for (IoUring.Completion c; (c = ring.poll()) != null; ) {
                    flying--;
                    PeerRead r = reads.get((int) c.userData());
                    try {
                        long got = c.result();
                        if (got < 0) throw new SysException("io_uring read", r.device().devNode() + " at " + r.deviceOffset(), (int) -got, "");
                        if (got < r.n() && got > 0) got += r.device().directHandle().preadFully(r.dst().asSlice(got), r.deviceOffset() + got);
                        if (got < r.n()) {
                            throw new IOException(r.device().devNode() + ": short read at " + r.deviceOffset() + " (" + got + " of "
                                    + r.n() + " bytes); the device ended early");
                        }
                        stats.add(PathLearner.Way.DIRECT, r.n(), System.nanoTime() - started[(int) c.userData()]);
                        progress.accept(done.addAndGet(r.n()));
                    } catch (IOException e) {
                        if (failure == null) failure = e; else failure.addSuppressed(e);
                    }
                }
            }
        } finally {
            rings.add(ring);
        }
        if (failure != null) throw failure;
    }

    private static void move(Entry e, long off, long n, MemorySegment memory) throws IOException {
        long dst = e.memoryOffset() + off;
        switch (e.target()) {
            case Target.Peer p -> {
                int lbs = p.device().geometry().logicalBlockSize();
                // O_DIRECT moves whole logical blocks; the tail past the file's end is zeroed later.
                long len = Math.min((n + lbs - 1) / lbs * lbs, memory.byteSize() - dst);
                long got = p.device().directHandle().preadFully(memory.asSlice(dst, len), p.deviceOffset() + off);
                if (got < n) {
                    throw new IOException(p.device().devNode() + ": short read at " + (p.deviceOffset() + off)
                            + " (" + got + " of " + n + " bytes); the device ended early");
                }
            }
            case Target.HostPages h -> {
                try {
                    MemorySegment.copy(h.pages(), off, memory, dst, n);
                } catch (InternalError fault) {
                    // SIGBUS on a mapped page: the file was truncated under the mapping.
                    throw new IOException("page fault at " + off + " of a mapping: the file shrank while mapped", fault);
                }
            }
        }
    }

    /** True when peer reads go through io_uring (false: worker threads, one blocked pread each). */
    boolean usesIoUring() { return ringsAvailable; }

    @Override
    public void close() {
        workers.shutdownNow();
        for (IoUring r; (r = rings.poll()) != null; ) r.close();
    }
}
