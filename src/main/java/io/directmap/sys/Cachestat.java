package io.directmap.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * cachestat(2) (Linux 6.5, syscall 451), <uapi/linux/mman.h>: how many pages of a file range are
 * in the page cache, dirty, under writeback. Since 6.14 it needs write permission or ownership of
 * the file (EPERM otherwise), the same rule as mincore's.
 */
public final class Cachestat {
    private static final long SYS_CACHESTAT = 451;

    // (state, long nr, ...long fd, long range*, long cstat*, long flags)long
    private static final MethodHandle SYSCALL = Libc.errnoHandle("syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            Linker.Option.firstVariadicArg(1));

    /** Page counts of one range. */
    public record Stat(long cached, long dirty, long writeback, long evicted, long recentlyEvicted) {}

    private Cachestat() {}

    /** Page-cache state of [offset, offset+length); length 0 means to end of file. */
    public static Stat query(FileHandle file, long offset, long length) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment range = arena.allocate(16, 8);   // struct cachestat_range { u64 off, len; }
            range.set(JAVA_LONG, 0, offset);
            range.set(JAVA_LONG, 8, length);
            MemorySegment cs = arena.allocate(40, 8);      // struct cachestat: 5 x u64
            long rc = Libc.call(s -> (long) SYSCALL.invokeExact(s, SYS_CACHESTAT, (long) file.fd(), range.address(),
                    cs.address(), 0L));
            if (rc < 0) {
                int errno = (int) -rc;
                throw new SysException("cachestat", file.path() + " " + offset + "+" + length, errno,
                        errno == Errno.EPERM ? "cachestat needs ownership of or write permission on the file"
                                : errno == Errno.ENOSYS ? "the kernel is older than 6.5" : "");
            }
            return new Stat(cs.get(JAVA_LONG, 0), cs.get(JAVA_LONG, 8), cs.get(JAVA_LONG, 16),
                    cs.get(JAVA_LONG, 24), cs.get(JAVA_LONG, 32));
        }
    }

    static { assert JAVA_INT.byteSize() == 4; }
}
