package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/** fstatfs(2): which file system type holds a file (f_type magic, <linux/magic.h>). */
public final class StatFs {
    public static final long EXT4_SUPER_MAGIC = 0xEF53L, XFS_SUPER_MAGIC = 0x58465342L,
            BTRFS_SUPER_MAGIC = 0x9123683EL, TMPFS_MAGIC = 0x01021994L, OVERLAYFS_SUPER_MAGIC = 0x794c7630L,
            NFS_SUPER_MAGIC = 0x6969L, FUSE_SUPER_MAGIC = 0x65735546L;

    // (state, int, struct statfs*)int ; struct statfs is 120 bytes on x86-64, f_type (long) at 0
    private static final MethodHandle FSTATFS = Libc.errnoHandle("fstatfs",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));

    private StatFs() {}

    public static long type(FileHandle file) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(256, 8);
            Libc.check("fstatfs", file.path(), "", s -> (int) FSTATFS.invokeExact(s, file.fd(), buf));
            return buf.get(JAVA_LONG, 0) & 0xFFFFFFFFL;
        }
    }
}
