package io.directmap.device;

import io.directmap.device.IommuTable.Entry;
import io.directmap.device.IommuTable.Target;
import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import io.directmap.mm.Peer;
import io.directmap.mm.Transfer;
import io.directmap.sys.Errno;
import io.directmap.sys.FileHandle;
import io.directmap.sys.IoUring;
import io.directmap.sys.SysException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongConsumer;

/**
 * The software device's DMA engine: moves the bytes of programmed table entries into device
 * memory, queueDepth requests in flight. A peer entry is read from the block device with O_DIRECT
 * (the page cache is never touched); a host entry is copied from page-cache pages, faulting them
 * in. Platform threads, because a blocking native read pins a virtual thread's carrier anyway.
 *
 * <p>No way out of {@link #transfer} leaves a read writing into the destination (STYLE habit 13).
 * On a failure (a read's error, a short read, a failed submit, a progress callback that throws,
 * an Error, an interrupt) the engine stops starting reads, waits for every read already started,
 * and only then throws the first failure, the others suppressed:
 * <ul>
 * <li>io_uring: what the kernel has not taken is taken back, each read in flight is waited for;
 *     the ring goes back to the pool only when it is idle, so no transfer ever sees another's
 *     completions. When the waiting itself fails (io_uring_enter keeps failing, an Error), the ring
 *     is closed, never pooled (the kernel cancels its reads in the background, io_ring_exit_work),
 *     the destination's device memory is set aside for good ({@link DeviceMemory#setAside}) and
 *     the transfer throws {@link DmaInFlightException}; a later transfer into that memory is refused
 *     with the same exception.
 * <li>worker threads: completion is counted per transfer, not read from futures (a cancelled
 *     future says nothing of whether its task is still running); nothing is cancelled, tasks not yet
 *     started skip their work, and the caller waits for every task, even when interrupted.
 * </ul>
 *
 * <p>A submit the kernel refuses (EAGAIN, EBUSY) is offered again by {@link IoUring#submitAndWait}:
 * after a completion when reads are in flight, else after a bounded backoff; past the bound the
 * transfer fails with that errno and a hint (DMAP_IO_URING=off), having drained the ring. It never
 * waits for a read the kernel did not take.
 *
 * <p>Fault points: READ_EIO and READ_SHORT fail a direct read as the device would, on both paths
 * (the ring's completion result in {@link IoUring#poll}, each pread here). A short read is
 * continued with another read; an injected short read ends the device where it stops, so when
 * that follow-up is short too (the point still firing) the transfer fails with "the device ended
 * early", and when it is not the bytes are complete and right.
 */
final class DmaEngine implements AutoCloseable {
    static final long PEER_REQUEST = 4L << 20, HOST_REQUEST = 2L << 20, MIN_REQUEST = 256L << 10;

    /** How the ring path waits for completions; tests put a failing one in to see an undrainable ring. */
    interface RingWait {
        void await(IoUring ring) throws SysException;
    }

    private final String device;
    private final ExecutorService workers;
    private final int depth;
    private final DeviceMemory memory;
    private final ConcurrentLinkedQueue<IoUring> rings = new ConcurrentLinkedQueue<>();
    private final boolean ringsAvailable;
    private volatile boolean closed;
    private final AtomicInteger ringsInUse = new AtomicInteger(), tasksRunning = new AtomicInteger();
    RingWait ringWait = ring -> ring.submitAndWait(1);

    /** Peer reads through io_uring unless DMAP_IO_URING=off or the system has none. */
    DmaEngine(String device, int depth, DeviceMemory memory) {
        this(device, depth, memory, !"off".equals(System.getenv("DMAP_IO_URING")));
    }

    /** As above; ioUring false sends peer reads to the worker threads (tests of that path). */
    DmaEngine(String device, int depth, DeviceMemory memory, boolean ioUring) {
        this.device = device;
        this.depth = depth;
        this.memory = memory;
        this.workers = Executors.newFixedThreadPool(depth, Thread.ofPlatform().daemon().name(device + "-dma-", 0).factory());
        Optional<IoUring> first = ioUring ? IoUring.tryOpen(ringEntries()) : Optional.empty();
        first.ifPresent(rings::add);
        this.ringsAvailable = first.isPresent();
    }

    int depth() { return depth; }

    private int ringEntries() { return Integer.highestOneBit(Math.max(1, depth - 1)) * 2; }

    /** Bytes and request time by way (direct, page cache hot or cold): what the learning policy is fed. */
    static final class Stats {
        final LongAdder[] bytes = {new LongAdder(), new LongAdder(), new LongAdder()};
        final LongAdder[] nanos = {new LongAdder(), new LongAdder(), new LongAdder()};

        void add(Transfer way, long n, long ns) {
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
     * copies, and peer reads where it has none, go to the worker threads. Returns or throws only
     * when no read of this transfer can still write into memory.
     */
    void transfer(List<Entry> entries, MemorySegment memory, LongConsumer progress, Stats stats) throws IOException {
        run(entries, memory, progress, stats, false);
    }

    /**
     * The write direction (a WRITE mapping): every entry's bytes go from memory to its target, a
     * peer entry written to the block device with O_DIRECT (io_uring, depth in flight, as reads), a
     * file entry stored through the file system ({@code vma.ops().store}, on the worker threads).
     * Returns or throws only when no write of this transfer can still read memory. A failure stops
     * the writes not yet started: the blocks they would have written keep their old bytes, those
     * written keep the new ones; a {@link WriteFailure} says which bytes of memory failed.
     */
    void write(List<Entry> entries, MemorySegment memory, LongConsumer progress, Stats stats) throws IOException {
        run(entries, memory, progress, stats, true);
    }

    private void run(List<Entry> entries, MemorySegment memory, LongConsumer progress, Stats stats, boolean write)
            throws IOException {
        if (this.memory != null && this.memory.isSetAside(memory)) throw new DmaInFlightException(device, memory.byteSize());
        DmaBatch b = new DmaBatch(device, memory, progress, stats);
        // Hold every block device read from open for the whole transfer: a device retired meanwhile
        // (its grants revoked) must not close a descriptor whose number a read is about to use.
        List<Peer> held = new ArrayList<>();
        for (Entry e : entries) {
            if (!(e.target() instanceof Target.Peer p) || held.contains(p.device())) continue;
            if (!p.device().beginDirectRead()) {
                held.forEach(Peer::endDirectRead);
                throw new IOException(p.device().node() + " was closed (it is going away): nothing is read through it;"
                        + " the mapping is taken back and faults again");
            }
            held.add(p.device());
        }
        try {
            List<PeerRead> peer = new ArrayList<>();
            // Large requests for large transfers; for small ones, smaller requests so that depth of them
            // are still in flight (an 8 MiB read is 8 requests of 1 MiB, not 2 of 4 MiB).
            long peerBytes = 0, hostBytes = 0;
            for (Entry e : entries) {
                if (e.target() instanceof Target.Peer) peerBytes += e.length(); else hostBytes += e.length();
            }
            long peerRequest = requestSize(peerBytes, PEER_REQUEST), hostRequest = requestSize(hostBytes, HOST_REQUEST);
            for (Entry e : entries) {
                long request = e.target() instanceof Target.Peer ? peerRequest : hostRequest;
                for (long off = 0; off < e.length() && !b.stop; off += request) {
                    long n = Math.min(request, e.length() - off);
                    if (e.target() instanceof Target.Peer p && ringsAvailable) {
                        peer.add(PeerRead.of(p, e.memoryOffset() + off, off, n, memory, write));
                    } else {
                        submit(b, e, off, n, write);
                    }
                }
            }
            if (!peer.isEmpty() && !b.stop) readThroughRing(peer, b);
        } catch (Throwable x) {
            b.fail(x);
        }
        Throwable failure = b.awaitAll();
        // Reads that could not be waited for (memory set aside) may still use the descriptor: keep it open.
        if (!(failure instanceof DmaInFlightException)) held.forEach(Peer::endDirectRead);
        if (failure instanceof IOException io) throw io;
        if (failure instanceof RuntimeException r) throw r;
        if (failure instanceof Error err) throw err;
        if (failure != null) throw new IOException(device + ": DMA failed: " + failure, failure);
    }

    private long requestSize(long total, long largest) {
        return requestSize(total, largest, depth);
    }

    /**
     * The request size for a transfer of total bytes at depth: largest, smaller for small transfers
     * so that depth of them are still in flight (an 8 MiB read is 8 requests of 1 MiB, not 2 of
     * 4 MiB), at least MIN_REQUEST, a power of two.
     */
    static long requestSize(long total, long largest, int depth) {
        long r = Math.min(largest, Math.max(MIN_REQUEST, total / depth));
        return Long.highestOneBit(r);
    }

    private void submit(DmaBatch b, Entry e, long off, long n, boolean write) {
        b.taskStarted();
        try {
            workers.execute(() -> runTask(b, e, off, n, write));
        } catch (RejectedExecutionException x) {
            b.taskFinished(new IOException(device + ": the DMA engine was closed during the transfer", x));
        } catch (RuntimeException | Error x) {
            // No worker could be started for it (OutOfMemoryError: unable to create native thread):
            // the task never ran, so it is finished, or the transfer would wait for it forever.
            b.taskFinished(x);
        }
    }

    private void runTask(DmaBatch b, Entry e, long off, long n, boolean write) {
        Throwable failure = null;
        try {
            if (closed) {
                failure = new IOException(device + ": the DMA engine was closed during the transfer");
            } else if (!b.stop) {
                tasksRunning.incrementAndGet();
                try {
                    long t0 = System.nanoTime();
                    if (write) store(e, off, n, b.memory); else move(e, off, n, b.memory);
                    // A file store (or a WRITE binding's refused range read back) teaches the learner nothing.
                    Transfer way = switch (e.target()) {
                        case Target.HostPages h -> h.way();
                        case Target.Peer p -> Transfer.DIRECT;
                        case Target.FileStore f -> null;
                    };
                    b.stats.add(way, n, System.nanoTime() - t0);
                    b.progressed(n);
                } finally {
                    tasksRunning.decrementAndGet();
                }
            }
        } catch (Throwable x) {
            failure = write && x instanceof IOException io ? new WriteFailure(e.memoryOffset() + off, n, io) : x;
        } finally {
            b.taskFinished(failure);
        }
    }

    /**
     * One O_DIRECT request of a peer entry: n bytes wanted, whole logical blocks read into dst; or,
     * for a write, exactly n bytes (whole blocks: a WRITE mapping's direct segments are) written from it.
     */
    private record PeerRead(Peer device, long deviceOffset, long n, MemorySegment dst, long memoryOffset, boolean write) {
        static PeerRead of(Target.Peer p, long memoryOffset, long off, long n, MemorySegment memory, boolean write) {
            int lbs = p.device().readAlignment();
            if (write) {
                requireWholeBlocks(p.device(), p.deviceOffset() + off, n);
                return new PeerRead(p.device(), p.deviceOffset() + off, n, memory.asSlice(memoryOffset, n), memoryOffset, true);
            }
            long len = Math.min((n + lbs - 1) / lbs * lbs, memory.byteSize() - memoryOffset);
            return new PeerRead(p.device(), p.deviceOffset() + off, n, memory.asSlice(memoryOffset, len), memoryOffset, false);
        }
    }

    /** A direct write is whole logical blocks: writing a partial one would write bytes past the segment. */
    private static void requireWholeBlocks(Peer device, long offset, long n) {
        int lbs = device.readAlignment();
        if (offset % lbs != 0 || n % lbs != 0) {
            throw new IllegalStateException(device.node() + ": a direct write of " + n + " bytes at " + offset
                    + " is not whole " + lbs + "-byte blocks; the file system grants WRITE only on whole pages");
        }
    }

    /**
     * Keeps depth reads in flight through a ring until all are done. On a failure it stops
     * submitting and drains the ring (see the class comment) before returning.
     */
    private void readThroughRing(List<PeerRead> reads, DmaBatch b) throws SysException {
        IoUring ring = rings.poll();
        if (ring == null) ring = IoUring.open(ringEntries());
        ringsInUse.incrementAndGet();
        long[] started = new long[reads.size()];
        try {
            int next = 0;
            while (!b.stop && (next < reads.size() || ring.outstanding() > 0)) {
                while (!b.stop && next < reads.size() && ring.outstanding() < depth) {
                    PeerRead r = reads.get(next);
                    if (r.write() && Faults.fire(FaultPoint.WRITE_EIO)) {
                        // The device fails this write before it starts: nothing of it reaches the blocks.
                        b.fail(new WriteFailure(r.memoryOffset(), r.n(), new SysException("io_uring write",
                                r.device().node() + " @" + r.deviceOffset() + "+" + r.n(), Errno.EIO, WRITE_EIO_HINT)));
                        break;
                    }
                    boolean queued = r.write() ? ring.prepareWrite(r.device().writeDescriptor(), r.dst(), r.deviceOffset(), next)
                            : ring.prepareRead(r.device().descriptor(), r.dst(), r.deviceOffset(), next);
                    if (!queued) break;
                    started[next++] = System.nanoTime();
                }
                ringWait.await(ring);
                reap(ring, reads, started, b);
            }
        } catch (Throwable x) {
            b.fail(x);
        }
        try {
            ring.dropUnsubmitted();
            while (ring.inFlight() > 0) {
                ringWait.await(ring);
                reap(ring, reads, started, b);
            }
            giveBack(ring);
        } catch (Throwable x) {
            // The kernel holds reads we cannot wait for: it may write them into memory any time now.
            int left = ring.inFlight();
            try {
                ring.close();
            } catch (Throwable y) {
                x.addSuppressed(y);
            }
            if (memory != null) memory.setAside(b.memory);
            b.fail(new DmaInFlightException(device, left, b.memory.byteSize(), x));
        } finally {
            ringsInUse.decrementAndGet();
        }
    }

    /** Polls every completion waiting: each is checked, a short one continued, progress reported. */
    private void reap(IoUring ring, List<PeerRead> reads, long[] started, DmaBatch b) {
        for (IoUring.Completion c; (c = ring.poll()) != null; ) {
            PeerRead r = reads.get((int) c.userData());
            try {
                long got = c.result();
                if (got < 0) {
                    int errno = (int) -got;
                    SysException e = new SysException(r.write() ? "io_uring write" : "io_uring read",
                            r.device().node() + " @" + r.deviceOffset() + "+" + r.dst().byteSize(),
                            errno, errno == Errno.EIO ? (r.write() ? WRITE_EIO_HINT : EIO_HINT) : "");
                    throw r.write() ? new WriteFailure(r.memoryOffset(), r.n(), e) : e;
                }
                if (b.stop) continue;
                if (r.write()) {
                    // A short write is continued; one that cannot go on fails with the bytes it left unwritten.
                    try {
                        if (got < r.n()) got += writeDirect(r.device(), r.dst().asSlice(got), r.deviceOffset() + got);
                    } catch (IOException e) {
                        throw new WriteFailure(r.memoryOffset() + got, r.n() - got, e);
                    }
                } else if (got < r.n() && got > 0) {
                    got += readDirect(r.device(), r.dst().asSlice(got), r.deviceOffset() + got);
                }
                if (got < r.n()) throw endedEarly(r.device(), r.deviceOffset(), got, r.n());
                b.stats.add(Transfer.DIRECT, r.n(), System.nanoTime() - started[(int) c.userData()]);
                b.progressed(r.n());
            } catch (IOException e) {
                b.fail(e);
            }
        }
    }

    private void giveBack(IoUring ring) {
        if (!ring.idle()) {
            ring.close();
            return;
        }
        rings.add(ring);
        if (closed) closeRings();
    }

    private static final String EIO_HINT = "the device failed this read (a bad sector, a lost disk: see dmesg); the range was not moved";
    private static final String WRITE_EIO_HINT = "the device failed this write (a bad sector, a lost disk: see dmesg); "
            + "its blocks keep their old bytes";

    /**
     * O_DIRECT pwrites of all of src at offset; returns the bytes written (all of them, or a
     * failure). WRITE_EIO fails a write before it starts, as a device that rejects it would.
     */
    private static long writeDirect(Peer device, MemorySegment src, long offset) throws SysException {
        long done = 0;
        while (done < src.byteSize()) {
            MemorySegment rest = done == 0 ? src : src.asSlice(done);
            if (Faults.fire(FaultPoint.WRITE_EIO)) {
                throw new SysException("pwrite O_DIRECT", device.node() + " @" + (offset + done) + "+" + rest.byteSize(), Errno.EIO,
                        WRITE_EIO_HINT);
            }
            long n = FileHandle.pwrite(device.writeDescriptor(), device.node(), true, rest, offset + done);
            if (n == 0) {
                throw new SysException("pwrite O_DIRECT", device.node() + " @" + (offset + done) + "+" + rest.byteSize(), Errno.EIO,
                        "the device took no bytes (did it shrink?); the rest keeps its old bytes");
            }
            done += n;
        }
        return done;
    }

    /** One request of the write direction on a worker thread. */
    private static void store(Entry e, long off, long n, MemorySegment memory) throws IOException {
        MemorySegment src = memory.asSlice(e.memoryOffset() + off, n);
        switch (e.target()) {
            case Target.Peer p -> {
                requireWholeBlocks(p.device(), p.deviceOffset() + off, n);
                writeDirect(p.device(), src, p.deviceOffset() + off);
            }
            case Target.FileStore f -> f.vma().ops().store(f.vma(), e.virtualAddress() - f.vma().address() + off, src);
            case Target.HostPages h -> throw new IllegalStateException("a write entry reaches page-cache pages for reading: "
                    + "a WRITE binding programs file stores for its refused ranges");
        }
    }

    private static IOException endedEarly(Peer device, long offset, long got, long n) {
        return new IOException(device.node() + ": short read at " + offset + " (" + got + " of " + n
                + " bytes); the device ended early (was it shrunk or detached?)");
    }

    /**
     * O_DIRECT preads until dst is full or the device ends; returns the bytes read. Fault points
     * fail a pread as the device would: READ_EIO with EIO, READ_SHORT as if the device ended
     * partway ({@link IoUring#shortened(long)}).
     */
    private static long readDirect(Peer device, MemorySegment dst, long offset) throws SysException {
        long done = 0;
        while (done < dst.byteSize()) {
            MemorySegment rest = done == 0 ? dst : dst.asSlice(done);
            long n = FileHandle.pread(device.descriptor(), device.node(), device.readAlignment() > 1, rest, offset + done);
            if (Faults.fire(FaultPoint.READ_EIO)) {
                throw new SysException("pread O_DIRECT", device.node() + " @" + (offset + done) + "+" + rest.byteSize(), Errno.EIO, EIO_HINT);
            }
            if (n > 0 && Faults.fire(FaultPoint.READ_SHORT)) n = IoUring.shortened(n);
            if (n == 0) break;
            done += n;
        }
        return done;
    }

    private static void move(Entry e, long off, long n, MemorySegment memory) throws IOException {
        long dst = e.memoryOffset() + off;
        switch (e.target()) {
            case Target.Peer p -> {
                int lbs = p.device().readAlignment();
                // O_DIRECT moves whole logical blocks; the tail past the file's end is zeroed later.
                long len = Math.min((n + lbs - 1) / lbs * lbs, memory.byteSize() - dst);
                long got = readDirect(p.device(), memory.asSlice(dst, len), p.deviceOffset() + off);
                if (got < n) throw endedEarly(p.device(), p.deviceOffset() + off, got, n);
            }
            case Target.HostPages h -> {
                try {
                    MemorySegment.copy(h.pages(), off, memory, dst, n);
                } catch (InternalError fault) {
                    // SIGBUS on a mapped page: the file was truncated under the mapping.
                    throw new IOException("page fault at " + off + " of a mapping: the file shrank while mapped", fault);
                }
            }
            case Target.FileStore f -> {
                // A WRITE binding read back: its refused ranges are read as the CPU would, through the page cache.
                MemorySegment pages = f.vma().ops().fault(f.vma(), e.virtualAddress() - f.vma().address() + off, n);
                MemorySegment.copy(pages, 0, memory, dst, n);
            }
        }
    }

    /** True when peer reads go through io_uring (false: worker threads, one blocked pread each). */
    boolean usesIoUring() { return ringsAvailable; }

    /** Rings taken by transfers now (0 when none runs): each is back in the pool, idle, or closed. */
    int ringsInUse() { return ringsInUse.get(); }

    /** True when every pooled ring is idle: no read of an earlier transfer is queued, in flight or unpolled. */
    boolean pooledRingsIdle() {
        for (IoUring r : rings) if (!r.idle()) return false;
        return true;
    }

    /** Worker tasks moving bytes now. */
    int tasksRunning() { return tasksRunning.get(); }

    private void closeRings() {
        for (IoUring r; (r = rings.poll()) != null; ) r.close();
    }

    /**
     * Stops the engine: tasks still queued skip their work (their transfer fails), rings in use are
     * closed by their transfer when it has drained them.
     */
    @Override
    public void close() {
        closed = true;
        workers.shutdown();
        closeRings();
    }
}
