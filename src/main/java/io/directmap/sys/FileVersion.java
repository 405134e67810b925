package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * Which version of a file a descriptor holds now: statx(2) ({@code <uapi/linux/stat.h>}) of its
 * identity (st_dev, st_ino), size and modification and change times in nanoseconds. Since Linux
 * 6.13, ext4, xfs and btrfs stamp multigrain timestamps: a change made after a statx that read the
 * ctime gets a ctime that differs from it, so two versions told apart by a reader never look alike.
 */
public final class FileVersion {
    private static final int AT_EMPTY_PATH = 0x1000, STATX_BASIC_STATS = 0x7ff, S_IFMT = 0170000, S_IFREG = 0100000;

    // (state, int dirfd, const char*, int flags, unsigned mask, struct statx*)int
    private static final MethodHandle STATX = Libc.errnoHandle("statx",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS));

    /**
     * One version of a file.
     *
     * @param regular    whether it is a regular file
     * @param devMajor   st_dev's major number
     * @param devMinor   st_dev's minor number
     * @param inode      st_ino
     * @param size       st_size
     * @param mtimeNanos the modification time, in nanoseconds since the epoch
     * @param ctimeNanos the change time, in nanoseconds since the epoch
     */
    public record Version(boolean regular, int devMajor, int devMinor, long inode, long size, long mtimeNanos, long ctimeNanos) {}

    private FileVersion() {}

    /**
     * statx of the descriptor.
     *
     * @param file an open file
     * @return its version now
     * @throws SysException when statx fails (a closed descriptor), naming the file
     */
    public static Version of(FileHandle file) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(256, 8);
            MemorySegment empty = arena.allocateFrom("");
            int fd = file.fd();
            Libc.check("statx", file.path(), "", s -> (int) STATX.invokeExact(s, fd, empty, AT_EMPTY_PATH, STATX_BASIC_STATS, buf));
            // struct statx: stx_mode@28 (u16) stx_ino@32 stx_size@40 stx_ctime@96 stx_mtime@112
            // (struct statx_timestamp { s64 tv_sec; u32 tv_nsec; s32 pad; }) stx_dev_major@136 stx_dev_minor@140
            int mode = Short.toUnsignedInt(buf.get(JAVA_SHORT, 28));
            return new Version((mode & S_IFMT) == S_IFREG, buf.get(JAVA_INT, 136), buf.get(JAVA_INT, 140), buf.get(JAVA_LONG, 32),
                    buf.get(JAVA_LONG, 40), nanos(buf, 112), nanos(buf, 96));
        }
    }

    private static long nanos(MemorySegment buf, long at) {
        return buf.get(JAVA_LONG, at) * 1_000_000_000L + Integer.toUnsignedLong(buf.get(JAVA_INT, at + 8));
    }
}
