package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * futimens(2) (utimensat(2) on a descriptor): a file's timestamps. A device that wrote a file's
 * blocks behind the file system moved no timestamp; touching the file with a NULL times array sets
 * mtime and ctime to now, as a write through the file system would have.
 */
public final class FileTimes {
    // (state, int fd, const struct timespec times[2])int
    private static final MethodHandle FUTIMENS = Libc.errnoHandle("futimens",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));

    private FileTimes() {}

    /** Sets the file's mtime (and so its ctime) to now: futimens(fd, NULL), UTIME_NOW for both. */
    public static void touch(FileHandle file) throws SysException {
        Libc.check("futimens", file.path(), "the file's owner (or CAP_FOWNER) may set its times",
                s -> (int) FUTIMENS.invokeExact(s, file.fd(), MemorySegment.NULL));
    }
}
