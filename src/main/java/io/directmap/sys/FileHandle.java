package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An open file descriptor (open(2), pread(2), pwrite(2), fsync(2), close(2)). Advice to the page
 * cache about it is {@link PageCacheAdvice}; mapping it into memory is {@link Mmap}.
 * Closing is idempotent; a closed handle fails with EBADF rather than touching a recycled number.
 */
public final class FileHandle implements AutoCloseable {
    // open(2) flags, <asm-generic/fcntl.h> on x86-64
    private static final int O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0100, O_DIRECT = 040000, O_CLOEXEC = 02000000;
    private static final int O_NOCTTY = 0400, O_NONBLOCK = 04000;
    private static final int F_GETFL = 3, F_SETFL = 4;
    private static final int O_TMPFILE = 020200000; // __O_TMPFILE | O_DIRECTORY

    // (MemorySegment state, const char*, int, ...int)int
    private static final MethodHandle OPEN = Libc.errnoHandle("open",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2));
    // (state, int, void*, size_t, off_t)ssize_t
    private static final MethodHandle PREAD = Libc.errnoHandle("pread",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle PWRITE = Libc.errnoHandle("pwrite",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
    // (state, int fd, int cmd, ...int)int
    private static final MethodHandle FCNTL = Libc.errnoHandle("fcntl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = Libc.errnoHandle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle FSYNC = Libc.errnoHandle("fsync", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle FDATASYNC = Libc.errnoHandle("fdatasync", FunctionDescriptor.of(JAVA_INT, JAVA_INT));

    private static final AtomicInteger OPEN_COUNT = new AtomicInteger();

    private final String path;
    private final boolean direct;
    private volatile int fd;

    private FileHandle(String path, int fd, boolean direct) {
        this.path = path;
        this.fd = fd;
        this.direct = direct;
        OPEN_COUNT.incrementAndGet();
    }

    /** Opens for reading, through the page cache. */
    public static FileHandle openRead(Path path) throws SysException {
        return open(path.toString(), O_RDONLY, false);
    }

    /** Opens for reading with O_DIRECT: bypasses the page cache; offsets, lengths and buffers must be aligned. */
    public static FileHandle openDirect(Path path) throws SysException {
        return open(path.toString(), O_RDONLY | O_DIRECT, true);
    }

    /**
     * Opens for reading without waiting on what the name turns out to be: O_NONBLOCK, so a FIFO
     * (swapped in after a stat) returns at once instead of waiting for a writer, and O_NOCTTY, so a
     * terminal never becomes ours. The caller checks {@code Statx.of(handle)} (the descriptor, not
     * the name) and then calls {@link #blocking()} before reading: io_uring fails reads of an
     * O_NONBLOCK file with EAGAIN instead of waiting.
     */
    public static FileHandle openProbe(Path path, boolean direct) throws SysException {
        return open(path.toString(), O_RDONLY | O_NONBLOCK | O_NOCTTY | (direct ? O_DIRECT : 0), direct);
    }

    /**
     * As {@link #openProbe}, for reading and writing (O_RDWR): a file a device will write through
     * (its fallback writes go through this descriptor, which also holds its write lease), or a block
     * device a device writes with O_DIRECT. Never creates anything.
     */
    public static FileHandle openProbeWritable(Path path, boolean direct) throws SysException {
        return open(path.toString(), O_RDWR | O_NONBLOCK | O_NOCTTY | (direct ? O_DIRECT : 0), direct);
    }

    /** Clears O_NONBLOCK (fcntl F_SETFL) once the descriptor is known to be what was meant. */
    public FileHandle blocking() throws SysException {
        int flags = (int) Libc.check("fcntl F_GETFL", path, "", s -> (int) FCNTL.invokeExact(s, fd(), F_GETFL, 0));
        if ((flags & O_NONBLOCK) == 0) return this;
        Libc.check("fcntl F_SETFL", path, "", s -> (int) FCNTL.invokeExact(s, fd(), F_SETFL, flags & ~O_NONBLOCK));
        return this;
    }

    /** Opens for reading and writing, creating the file if needed (tests, demo). */
    public static FileHandle openReadWrite(Path path) throws SysException {
        return open(path.toString(), O_RDWR | O_CREAT, false);
    }

    /** Opens an existing file or device node for reading and writing; never creates one (loop-control, /dev/loopN). */
    public static FileHandle openExisting(Path path) throws SysException {
        return open(path.toString(), O_RDWR, false);
    }

    /**
     * A new regular file with no name, in dir's file system (open(2) O_TMPFILE, mode 0600): there
     * is nothing to delete, it is freed when the last descriptor or loop device holding it goes.
     */
    public static FileHandle createUnnamed(Path dir) throws SysException {
        return open(dir.toString(), O_RDWR | O_TMPFILE, false, 0600);
    }

    /** A descriptor another call of this package opened (memfd_create): closing the handle closes it. */
    static FileHandle adopt(String path, int fd) {
        return new FileHandle(path, fd, false);
    }

    private static FileHandle open(String path, int flags, boolean direct) throws SysException {
        return open(path, flags, direct, 0644);
    }

    private static FileHandle open(String path, int flags, boolean direct, int mode) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocateFrom(path);
            int fd = (int) Libc.call(s -> (int) OPEN.invokeExact(s, name, flags | O_CLOEXEC, mode));
            if (fd < 0) throw new SysException(direct ? "open O_DIRECT" : "open", path, -fd, openHint(-fd));
            return new FileHandle(path, fd, direct);
        }
    }

    private static String openHint(int errno) {
        return switch (errno) {
            case Errno.EACCES -> "check the permissions, or run as root";
            case Errno.EPERM -> "the kernel forbids this open even to root (a protected or in-use device)";
            case Errno.ENOENT -> "check the path";
            case Errno.EINVAL -> "this file system does not support O_DIRECT";
            case Errno.EOPNOTSUPP, Errno.EISDIR -> "this file system cannot make unnamed files (O_TMPFILE)";
            default -> "";
        };
    }

    /** The number of FileHandles open in this JVM, for leak checks. */
    public static int openCount() {
        return OPEN_COUNT.get();
    }

    public String path() { return path; }
    public boolean isDirect() { return direct; }

    /** The descriptor's number (for /proc/PID/fd/N, a path other processes can open); throws once closed. */
    public int fd() throws SysException {
        int f = fd;
        if (f < 0) throw new SysException("use", path, Errno.EBADF, "the handle was closed");
        return f;
    }

    /**
     * Reads up to dst.byteSize() bytes at offset; returns the count (short at end of file).
     * Allocates nothing: it is the DMA engine's per-request call, so it is the one call written out
     * rather than passed to {@link Libc#call} as a lambda (which escape analysis may or may not remove).
     */
    public long pread(MemorySegment dst, long offset) throws SysException {
        return pread(fd(), path, direct, dst, offset);
    }

    /**
     * As {@link #pread(MemorySegment, long)}, through a descriptor someone else owns and keeps open
     * for the call (a {@code mm.Peer} between its beginDirectRead and endDirectRead). target names
     * it in the message of a failure (its toString is called only then); direct says whether it
     * was opened with O_DIRECT, for the hint.
     */
    public static long pread(int fd, Object target, boolean direct, MemorySegment dst, long offset) throws SysException {
        try {
            MemorySegment state = Libc.state();
            long n = (long) PREAD.invokeExact(state, fd, dst, dst.byteSize(), offset);
            return checkIo(n, state, "pread", direct, target, offset, dst.byteSize());
        } catch (SysException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Reads exactly dst.byteSize() bytes unless end of file comes first; returns the count. */
    public long preadFully(MemorySegment dst, long offset) throws SysException {
        long done = 0;
        while (done < dst.byteSize()) {
            long n = pread(dst.asSlice(done), offset + done);
            if (n == 0) break;
            done += n;
        }
        return done;
    }

    /**
     * Writes up to src.byteSize() bytes at offset through a descriptor someone else owns and keeps
     * open for the call (a {@code mm.Peer} between its beginDirectRead and endDirectRead); returns
     * the count. Allocates nothing, as {@link #pread(int, Object, boolean, MemorySegment, long)}.
     */
    public static long pwrite(int fd, Object target, boolean direct, MemorySegment src, long offset) throws SysException {
        try {
            MemorySegment state = Libc.state();
            long n = (long) PWRITE.invokeExact(state, fd, src, src.byteSize(), offset);
            return checkIo(n, state, "pwrite", direct, target, offset, src.byteSize());
        } catch (SysException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /**
     * n as pread(2) or pwrite(2) returned it, or, when negative, the failure it stands for: the call
     * (with " O_DIRECT" for a direct descriptor), target and range, the errno captured in state with
     * the call, and the alignment hint for EINVAL under O_DIRECT. Allocates nothing unless it fails.
     */
    private static long checkIo(long n, MemorySegment state, String call, boolean direct, Object target, long offset, long length)
            throws SysException {
        if (n >= 0) return n;
        int errno = Libc.errno(state);
        throw new SysException(direct ? call + " O_DIRECT" : call, target + " @" + offset + "+" + length, errno,
                errno == Errno.EINVAL && direct ? "offset, length or buffer not aligned to the logical block size" : "");
    }

    /** fdatasync(2) of a descriptor someone else keeps open; on a block device it flushes the device's write cache. */
    public static void fdatasync(int fd, Object target) throws SysException {
        Libc.check("fdatasync", String.valueOf(target), "", s -> (int) FDATASYNC.invokeExact(s, fd));
    }

    public void pwriteFully(MemorySegment src, long offset) throws SysException {
        long done = 0;
        while (done < src.byteSize()) {
            MemorySegment slice = src.asSlice(done);
            long at = offset + done;
            done += Libc.check("pwrite", path + " @" + at, "",
                    s -> (long) PWRITE.invokeExact(s, fd(), slice, slice.byteSize(), at));
        }
    }

    public void fsync() throws SysException {
        Libc.check("fsync", path, "", s -> (int) FSYNC.invokeExact(s, fd()));
    }

    @Override
    public void close() throws SysException {
        int f;
        synchronized (this) {
            f = fd;
            if (f < 0) return;
            fd = -1;
        }
        OPEN_COUNT.decrementAndGet();
        Libc.check("close", path, "", s -> (int) CLOSE.invokeExact(s, f));
    }

    @Override
    public String toString() {
        return path + (direct ? " (O_DIRECT)" : "");
    }
}
