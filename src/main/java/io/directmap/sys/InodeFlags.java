package io.directmap.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Per-inode attribute flags, <linux/fs.h>: FS_IOC_GETFLAGS (chattr/lsattr flags) and
 * FS_IOC_FSGETXATTR (struct fsxattr, the xfs-born extended flags such as REALTIME).
 */
public final class InodeFlags {
    public static final int FS_COMPR_FL = 0x4, FS_ENCRYPT_FL = 0x800, FS_JOURNAL_DATA_FL = 0x4000,
            FS_NOCOW_FL = 0x800000, FS_VERITY_FL = 0x100000, FS_INLINE_DATA_FL = 0x10000000;
    public static final int FS_XFLAG_REALTIME = 0x1;

    private static final long FS_IOC_GETFLAGS = 0x80086601L, FS_IOC_FSGETXATTR = 0x801c581fL;

    private InodeFlags() {}

    /** The chattr flags; 0 where the file system has none (ENOTTY, EOPNOTSUPP). */
    public static int flags(FileHandle file) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(8, 8);
            Ioctl.call(file, FS_IOC_GETFLAGS, buf, "FS_IOC_GETFLAGS", "");
            return buf.get(JAVA_INT, 0);
        } catch (SysException e) {
            if (e.errno() == Errno.ENOTTY || e.errno() == Errno.EOPNOTSUPP || e.errno() == Errno.EINVAL) return 0;
            throw e;
        }
    }

    /** struct fsxattr.fsx_xflags; 0 where unsupported. */
    public static int xflags(FileHandle file) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(28, 8);
            Ioctl.call(file, FS_IOC_FSGETXATTR, buf, "FS_IOC_FSGETXATTR", "");
            return buf.get(JAVA_INT, 0);
        } catch (SysException e) {
            if (e.errno() == Errno.ENOTTY || e.errno() == Errno.EOPNOTSUPP || e.errno() == Errno.EINVAL) return 0;
            throw e;
        }
    }
}
