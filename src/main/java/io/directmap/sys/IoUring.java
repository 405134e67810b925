package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.Optional;
import java.util.concurrent.locks.LockSupport;

/**
 * A minimal io_uring (io_uring_setup, the shared rings, io_uring_enter; io_uring_enter(2),
 * include/uapi/linux/io_uring.h) for reads: the DMA engine keeps many O_DIRECT reads in flight
 * from one thread, as fio does, instead of one blocked thread per request. One ring is used by one
 * thread at a time, and without SQPOLL, so the kernel reads the submission queue only inside that
 * thread's io_uring_enter.
 *
 * <p>Every read is in one of three states: prepared (in the queue, not yet taken by the kernel),
 * in flight (taken: the kernel may write its buffer at any moment until its completion is polled)
 * or done. io_uring_enter takes what lies between the kernel's queue head and our tail; it may take
 * only some (it returns how many, and the head moves) or none (EAGAIN, EBUSY, EINTR), and what it
 * did not take stays queued and is offered again on the next call, so nothing is ever left behind
 * unsubmitted. {@link #dropUnsubmitted} takes back what the kernel has not taken. A ring with reads
 * in flight must not be reused or have its buffers freed; {@link #idle} says when it may.
 */
public final class IoUring implements AutoCloseable {
    private static final long SYS_IO_URING_SETUP = 425, SYS_IO_URING_ENTER = 426;
    private static final long OFF_SQ_RING = 0, OFF_CQ_RING = 0x8000000L, OFF_SQES = 0x10000000L;
    private static final int FEAT_SINGLE_MMAP = 1, ENTER_GETEVENTS = 1;
    private static final byte OP_READ = 22, OP_WRITE = 23;   // IORING_OP_READ, IORING_OP_WRITE, <linux/io_uring.h>
    private static final int PROT_RW = 3, MAP_SHARED_POPULATE = 0x1 | 0x8000;
    private static final int SQE = 64, CQE = 16;

    private static final MethodHandle SYSCALL_SETUP = Libc.errnoHandle("syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS), Linker.Option.firstVariadicArg(1));
    private static final MethodHandle SYSCALL_ENTER = Libc.errnoHandle("syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG),
            Linker.Option.firstVariadicArg(1));
    private static final MethodHandle MMAP = Libc.errnoHandle("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MUNMAP = Libc.plainHandle("munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle CLOSE = Libc.errnoHandle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final VarHandle INT = JAVA_INT.varHandle();

    /** One finished read: what was asked (userData) and the result (bytes, or -errno). */
    public record Completion(long userData, int result) {}

    private final int fd;
    private final MemorySegment sqRing, cqRing, sqes;
    private final long sqHead, sqTail, sqMask, sqArray, cqHead, cqTail, cqMask, cqes;
    /** How often io_uring_enter may take nothing (EAGAIN, EBUSY) in a row, with nothing in flight, before giving up. */
    public static final int BUSY_TRIES = 10;
    private static final long FIRST_BACKOFF_NANOS = 1_000_000, MAX_BACKOFF_NANOS = 64_000_000;

    private final int entries, cqEntries;
    private int tail;         // the queue tail as published to the kernel
    private int pending;      // prepared past the tail, not yet published
    private int inFlight;     // taken by the kernel, completion not yet polled

    private IoUring(int fd, MemorySegment sqRing, MemorySegment cqRing, MemorySegment sqes, MemorySegment params, int entries,
                    int cqEntries) {
        this.fd = fd;
        this.sqRing = sqRing;
        this.cqRing = cqRing;
        this.sqes = sqes;
        this.entries = entries;
        this.cqEntries = cqEntries;
        this.sqHead = params.get(JAVA_INT, 40);
        this.sqTail = params.get(JAVA_INT, 44);
        this.sqMask = sqRing.get(JAVA_INT, params.get(JAVA_INT, 48));
        this.sqArray = params.get(JAVA_INT, 64);
        this.cqHead = params.get(JAVA_INT, 80);
        this.cqTail = params.get(JAVA_INT, 84);
        this.cqMask = cqRing.get(JAVA_INT, params.get(JAVA_INT, 88));
        this.cqes = params.get(JAVA_INT, 100);
        this.tail = (int) INT.get(sqRing, sqTail);
    }

    /** A ring of entries (a power of two), or the reason there is none (old kernel, io_uring disabled, seccomp). */
    public static IoUring open(int entries) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = arena.allocate(120, 8);
            int fd = (int) Libc.check("io_uring_setup", entries + " entries",
                    "io_uring is unavailable (kernel.io_uring_disabled, or a seccomp filter); reads use threads instead",
                    s -> (long) SYSCALL_SETUP.invokeExact(s, SYS_IO_URING_SETUP, entries, params));
            int sqEntries = params.get(JAVA_INT, 0), cqEntries = params.get(JAVA_INT, 4), features = params.get(JAVA_INT, 20);
            long sqSize = params.get(JAVA_INT, 64) + 4L * sqEntries;
            long cqSize = params.get(JAVA_INT, 100) + (long) CQE * cqEntries;
            boolean single = (features & FEAT_SINGLE_MMAP) != 0;
            if (single) sqSize = cqSize = Math.max(sqSize, cqSize);
            MemorySegment sq = map(fd, sqSize, OFF_SQ_RING);
            MemorySegment cq = single ? sq : map(fd, cqSize, OFF_CQ_RING);
            MemorySegment sqes = map(fd, (long) SQE * sqEntries, OFF_SQES);
            return new IoUring(fd, sq, cq, sqes, params, sqEntries, cqEntries);
        }
    }

    /** A ring, or empty when this system has none. */
    public static Optional<IoUring> tryOpen(int entries) {
        try {
            return Optional.of(open(entries));
        } catch (SysException e) {
            return Optional.empty();
        }
    }

    @SuppressWarnings("restricted")   // sys is where restricted FFM calls live: -Werror fails one anywhere else
    private static MemorySegment map(int fd, long size, long offset) throws SysException {
        // (state, void*, size_t, int, int, int, off_t)void*; MAP_FAILED is (void*)-1, no user-space address is negative
        long a = Libc.check("mmap io_uring ring", "offset " + offset, "", s -> ((MemorySegment) MMAP.invokeExact(s,
                MemorySegment.NULL, size, PROT_RW, MAP_SHARED_POPULATE, fd, offset)).address());
        return MemorySegment.ofAddress(a).reinterpret(size);
    }

    public int entries() { return entries; }

    /**
     * Prepares a read of dst.byteSize() bytes at offset of file into dst; false when the ring is full
     * (the queue, or as many reads outstanding as the completion queue can hold without overflow).
     */
    public boolean prepareRead(FileHandle file, MemorySegment dst, long offset, long userData) throws SysException {
        return prepareRead(file.fd(), dst, offset, userData);
    }

    /**
     * As {@link #prepareRead(FileHandle, MemorySegment, long, long)}, through a descriptor someone
     * else owns and keeps open until the read completes (a {@code mm.Peer} between its
     * beginDirectRead and endDirectRead).
     */
    public boolean prepareRead(int fd, MemorySegment dst, long offset, long userData) {
        return prepare(OP_READ, fd, dst, offset, userData);
    }

    /**
     * Prepares a write of src.byteSize() bytes of src at offset of fd (a descriptor someone else
     * keeps open until the write completes, as for {@link #prepareRead(int, MemorySegment, long, long)});
     * false when the ring is full. Its completion's result is the bytes written, or minus the errno.
     */
    public boolean prepareWrite(int fd, MemorySegment src, long offset, long userData) {
        return prepare(OP_WRITE, fd, src, offset, userData);
    }

    private boolean prepare(byte op, int fd, MemorySegment buf, long offset, long userData) {
        MemorySegment dst = buf;
        int head = (int) INT.getAcquire(sqRing, sqHead);
        int next = tail + pending;
        if (next - head >= entries || outstanding() >= cqEntries) return false;
        int index = (int) (next & sqMask);
        MemorySegment sqe = sqes.asSlice((long) index * SQE, SQE);
        sqe.fill((byte) 0);
        sqe.set(JAVA_BYTE, 0, op);
        sqe.set(JAVA_INT, 4, fd);
        sqe.set(JAVA_LONG, 8, offset);
        sqe.set(JAVA_LONG, 16, dst.address());
        sqe.set(JAVA_INT, 24, (int) dst.byteSize());
        sqe.set(JAVA_LONG, 32, userData);
        sqRing.set(JAVA_INT, sqArray + 4L * index, index);
        pending++;
        return true;
    }

    /**
     * Submits what was prepared (and anything an earlier call could not), then waits until at least
     * minComplete reads have finished, never for more than are outstanding. It may return earlier, when
     * the kernel took only some of the queue or a signal came: the caller polls, and calls again while
     * reads are outstanding.
     *
     * <p>When the kernel takes nothing (EAGAIN or EBUSY: it is short of memory for requests, or its
     * completion backlog is full) and reads are in flight, it waits for one of them instead, which gives
     * the kernel back what it needs; with nothing in flight it backs off (1, 2, 4 ... 64 ms) and tries
     * again, at most {@link #BUSY_TRIES} times, then fails with that errno. The unsubmitted reads then
     * stay queued: {@link #dropUnsubmitted} takes them back.
     */
    public void submitAndWait(int minComplete) throws SysException {
        if (pending > 0) {
            tail += pending;
            pending = 0;
            INT.setRelease(sqRing, sqTail, tail);
        }
        // Written out rather than through Libc.call: this runs once per batch of the DMA engine, and a
        // lambda capturing the loop's values would be an allocation per io_uring_enter.
        try {
            MemorySegment state = Libc.state();
            int busy = 0;
            long backoff = FIRST_BACKOFF_NANOS, slept = 0;
            boolean reapFirst = false;
            while (true) {
                int head = (int) INT.getAcquire(sqRing, sqHead);
                int toSubmit = reapFirst ? 0 : tail - head;
                int wait = Math.min(minComplete, inFlight + toSubmit);
                if (toSubmit == 0 && wait <= 0) return;
                long rc;
                int errno = 0;
                if (toSubmit > 0 && Faults.fire(FaultPoint.IO_URING_SUBMIT_EAGAIN)) {
                    rc = -1;                       // as the kernel does when it can allocate no request: nothing taken
                    errno = Errno.EAGAIN;
                } else {
                    // (state, long nr, int fd, u32 to_submit, u32 min_complete, u32 flags, sigset*, size_t)long
                    rc = (long) SYSCALL_ENTER.invokeExact(state, SYS_IO_URING_ENTER, fd, toSubmit, wait,
                            wait > 0 ? ENTER_GETEVENTS : 0, MemorySegment.NULL, 0L);
                    if (rc < 0) errno = Libc.errno(state);
                }
                // What the kernel took, whatever it returned: it moves the head past every entry it consumed.
                inFlight += (int) INT.getAcquire(sqRing, sqHead) - head;
                if (rc >= 0) return;
                if (errno == Errno.EINTR) continue;
                if (errno != Errno.EAGAIN && errno != Errno.EBUSY) {
                    throw new SysException("io_uring_enter", toSubmit + " reads to submit, " + wait + " to wait for", errno,
                            "the ring cannot be used any more; set DMAP_IO_URING=off to read with threads instead");
                }
                if (inFlight > 0) {
                    reapFirst = true;              // a completion frees what the kernel lacks; submit on the next call
                    continue;
                }
                if (++busy >= BUSY_TRIES) {
                    throw new SysException("io_uring_enter", toSubmit + " reads to submit", errno,
                            "the kernel took none of them in " + BUSY_TRIES + " tries over " + slept / 1_000_000
                                    + " ms (short of memory for requests?); retry later, or set DMAP_IO_URING=off to read with threads");
                }
                LockSupport.parkNanos(backoff);
                slept += backoff;
                backoff = Math.min(2 * backoff, MAX_BACKOFF_NANOS);
            }
        } catch (SysException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Reads prepared or queued that the kernel has not taken, plus those in flight. */
    public int outstanding() {
        return pending + (tail - (int) INT.getAcquire(sqRing, sqHead)) + inFlight;
    }

    /** Reads the kernel has taken whose completion has not been polled: their buffers may still be written. */
    public int inFlight() { return inFlight; }

    /**
     * Takes back the reads the kernel has not taken (it never saw them: it reads the queue only inside
     * io_uring_enter, on this thread); returns how many. Reads in flight stay in flight.
     */
    public int dropUnsubmitted() {
        int head = (int) INT.getAcquire(sqRing, sqHead);
        int dropped = pending + (tail - head);
        pending = 0;
        if (tail != head) {
            tail = head;
            INT.setRelease(sqRing, sqTail, tail);
        }
        return dropped;
    }

    /** True when nothing is queued, in flight or left unpolled: the ring can serve another transfer. */
    public boolean idle() {
        return outstanding() == 0 && (int) INT.get(cqRing, cqHead) == (int) INT.getAcquire(cqRing, cqTail);
    }

    /**
     * The next finished read, or null when none is waiting. Fault points READ_EIO and READ_SHORT
     * change the result as a failing or ending device would: -EIO, or fewer bytes ({@link #shortened(long)}).
     */
    public Completion poll() {
        int head = (int) INT.get(cqRing, cqHead);
        int cqTailNow = (int) INT.getAcquire(cqRing, cqTail);
        if (head == cqTailNow) return null;
        long at = cqes + (head & cqMask) * CQE;
        long userData = cqRing.get(JAVA_LONG, at);
        int result = cqRing.get(JAVA_INT, at + 8);
        INT.setRelease(cqRing, cqHead, head + 1);
        inFlight--;
        if (result >= 0 && Faults.fire(FaultPoint.READ_EIO)) result = -Errno.EIO;
        else if (result > 0 && Faults.fire(FaultPoint.READ_SHORT)) result = (int) shortened(result);
        return new Completion(userData, result);
    }

    /**
     * What an injected short read returns of n bytes: half, in whole 4 KiB blocks (a multiple of any
     * logical block size, so a follow-up O_DIRECT read stays aligned); 0 under 8 KiB, the device's end.
     */
    public static long shortened(long n) {
        return (n / 2) & ~4095L;
    }

    @Override
    public void close() {
        try {
            int r = (int) MUNMAP.invokeExact(sqes, sqes.byteSize());
            r = (int) MUNMAP.invokeExact(sqRing, sqRing.byteSize());
            if (cqRing != sqRing) r = (int) MUNMAP.invokeExact(cqRing, cqRing.byteSize());
            r = (int) CLOSE.invokeExact(Libc.state(), fd);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }
}
