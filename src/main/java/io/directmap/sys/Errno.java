package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/** errno numbers that the layers above test for, and their names and texts from glibc (2.32+). */
public final class Errno {
    public static final int EINTR = 4;
    public static final int EPERM = 1, ENOENT = 2, EIO = 5, EBADF = 9, EAGAIN = 11, EACCES = 13,
            EBUSY = 16, ENODEV = 19, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENOTTY = 25, EROFS = 30,
            ENOSYS = 38, EOPNOTSUPP = 95;

    // const char *strerrorname_np(int) / strerrordesc_np(int): thread-safe, static strings.
    private static final MethodHandle NAME =
            Libc.plainHandle("strerrorname_np", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    private static final MethodHandle DESC =
            Libc.plainHandle("strerrordesc_np", FunctionDescriptor.of(ADDRESS, JAVA_INT));

    private Errno() {}

    /** "EPERM", or "errno 4242" for a number glibc does not know. */
    public static String name(int errno) {
        return text(NAME, errno, "errno " + errno);
    }

    /** "Operation not permitted". */
    public static String describe(int errno) {
        return text(DESC, errno, "unknown error");
    }

    @SuppressWarnings("restricted")   // sys is where restricted FFM calls live: -Werror fails one anywhere else
    private static String text(MethodHandle handle, int errno, String otherwise) {
        try {
            MemorySegment s = (MemorySegment) handle.invokeExact(errno);
            return s.equals(MemorySegment.NULL) ? otherwise : s.reinterpret(256).getString(0);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }
}
