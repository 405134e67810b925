package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.Optional;

/**
 * A minimal io_uring (io_uring_setup, the shared rings, io_uring_enter) for reads: the DMA
 * engine keeps many O_DIRECT reads in flight from one thread, as fio does, instead of one
 * blocked thread per request. One ring is used by one thread at a time.
 */
public final class IoUring implements AutoCloseable {
    private static final long SYS_IO_URING_SETUP = 425, SYS_IO_URING_ENTER = 426;
    private static final long OFF_SQ_RING = 0, OFF_CQ_RING = 0x8000000L, OFF_SQES = 0x10000000L;
    private static final int FEAT_SINGLE_MMAP = 1, ENTER_GETEVENTS = 1;
    private static final byte OP_READ = 22;
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
    private final int entries;
    private int pending;      // prepared, not yet submitted

    private IoUring(int fd, MemorySegment sqRing, MemorySegment cqRing, MemorySegment sqes, MemorySegment params, int entries) {
        this.fd = fd;
        this.sqRing = sqRing;
        this.cqRing = cqRing;
        this.sqes = sqes;
        this.entries = entries;
        this.sqHead = params.get(JAVA_INT, 40);
        this.sqTail = params.get(JAVA_INT, 44);
        this.sqMask = sqRing.get(JAVA_INT, params.get(JAVA_INT, 48));
        this.sqArray = params.get(JAVA_INT, 64);
        this.cqHead = params.get(JAVA_INT, 80);
        this.cqTail = params.get(JAVA_INT, 84);
        this.cqMask = cqRing.get(JAVA_INT, params.get(JAVA_INT, 88));
        this.cqes = params.get(JAVA_INT, 100);
    }

    /** A ring of entries (a power of two), or the reason there is none (old kernel, io_uring disabled, seccomp). */
    public static IoUring open(int entries) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = Libc.state();
            MemorySegment params = arena.allocate(120, 8);
            int fd = (int) (long) SYSCALL_SETUP.invokeExact(state, SYS_IO_URING_SETUP, entries, params);
            if (fd < 0) throw new SysException("io_uring_setup", entries + " entries", Libc.errno(state),
                    "io_uring is unavailable (kernel.io_uring_disabled, or a seccomp filter); reads use threads instead");
            int sqEntries = params.get(JAVA_INT, 0), cqEntries = params.get(JAVA_INT, 4), features = params.get(JAVA_INT, 20);
            long sqSize = params.get(JAVA_INT, 64) + 4L * sqEntries;
            long cqSize = params.get(JAVA_INT, 100) + (long) CQE * cqEntries;
            boolean single = (features & FEAT_SINGLE_MMAP) != 0;
            if (single) sqSize = cqSize = Math.max(sqSize, cqSize);
            MemorySegment sq = map(state, fd, sqSize, OFF_SQ_RING);
            MemorySegment cq = single ? sq : map(state, fd, cqSize, OFF_CQ_RING);
            MemorySegment sqes = map(state, fd, (long) SQE * sqEntries, OFF_SQES);
            return new IoUring(fd, sq, cq, sqes, params, sqEntries);
        } catch (SysException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
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

    private static MemorySegment map(MemorySegment state, int fd, long size, long offset) throws Throwable {
        MemorySegment a = (MemorySegment) MMAP.invokeExact(state, MemorySegment.NULL, size, PROT_RW, MAP_SHARED_POPULATE, fd, offset);
        if (a.address() == -1L) throw new SysException("mmap io_uring ring", "offset " + offset, Libc.errno(state), "");
        return a.reinterpret(size);
    }

    public int entries() { return entries; }

    /** Prepares a read of dst.byteSize() bytes at offset of file into dst; false when the ring is full. */
    public boolean prepareRead(FileHandle file, MemorySegment dst, long offset, long userData) throws SysException {
        int head = (int) INT.getAcquire(sqRing, sqHead);
        int tail = (int) INT.get(sqRing, sqTail) + pending;
        if (tail - head >= entries) return false;
        int index = (int) (tail & sqMask);
        MemorySegment sqe = sqes.asSlice((long) index * SQE, SQE);
        sqe.fill((byte) 0);
        sqe.set(JAVA_BYTE, 0, OP_READ);
        sqe.set(JAVA_INT, 4, file.fd());
        sqe.set(JAVA_LONG, 8, offset);
        sqe.set(JAVA_LONG, 16, dst.address());
        sqe.set(JAVA_INT, 24, (int) dst.byteSize());
        sqe.set(JAVA_LONG, 32, userData);
        sqRing.set(JAVA_INT, sqArray + 4L * index, index);
        pending++;
        return true;
    }

    /** Submits what was prepared and waits until at least minComplete reads have finished. */
    public void submitAndWait(int minComplete) throws SysException {
        int submit = pending;
        if (submit > 0) {
            int tail = (int) INT.get(sqRing, sqTail);
            INT.setRelease(sqRing, sqTail, tail + submit);
            pending = 0;
        }
        try {
            MemorySegment state = Libc.state();
            while (true) {
                long rc = (long) SYSCALL_ENTER.invokeExact(state, SYS_IO_URING_ENTER, fd, submit, minComplete,
                        minComplete > 0 ? ENTER_GETEVENTS : 0, MemorySegment.NULL, 0L);
                if (rc >= 0) return;
                int errno = Libc.errno(state);
                if (errno != Errno.EINTR && errno != Errno.EAGAIN) throw new SysException("io_uring_enter", "", errno, "");
                submit = 0;
            }
        } catch (SysException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** The next finished read, or null when none is waiting. */
    public Completion poll() {
        int head = (int) INT.get(cqRing, cqHead);
        int tail = (int) INT.getAcquire(cqRing, cqTail);
        if (head == tail) return null;
        long at = cqes + (long) (head & cqMask) * CQE;
        Completion c = new Completion(cqRing.get(JAVA_LONG, at), cqRing.get(JAVA_INT, at + 8));
        INT.setRelease(cqRing, cqHead, head + 1);
        return c;
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
