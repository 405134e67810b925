package io.directmap.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.invoke.MethodHandle;

/**
 * posix_fadvise(2), <linux/fadvise.h>: advice to the page cache about a range of an open file,
 * dropping its clean pages or starting to read them in. Neither needs root.
 */
public final class PageCacheAdvice {
    private static final int POSIX_FADV_DONTNEED = 4, POSIX_FADV_WILLNEED = 3;

    // posix_fadvise returns the error number instead of setting errno: (int, off_t, off_t, int)int
    private static final MethodHandle FADVISE = Libc.plainHandle("posix_fadvise",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));

    private PageCacheAdvice() {}

    /** posix_fadvise(DONTNEED): drops clean cached pages of the range (no root needed). */
    public static void dropCache(FileHandle file, long offset, long length) throws SysException {
        fadvise(file, offset, length, POSIX_FADV_DONTNEED, "posix_fadvise DONTNEED");
    }

    /** posix_fadvise(WILLNEED): starts reading the range into the page cache. */
    public static void prefetch(FileHandle file, long offset, long length) throws SysException {
        fadvise(file, offset, length, POSIX_FADV_WILLNEED, "posix_fadvise WILLNEED");
    }

    private static void fadvise(FileHandle file, long offset, long length, int advice, String call) throws SysException {
        // The error comes back as the result (never negative), not in errno: the state goes unused.
        int err = (int) Libc.call(s -> (int) FADVISE.invokeExact(file.fd(), offset, length, advice));
        if (err != 0) throw new SysException(call, file.path(), err, "");
    }
}
