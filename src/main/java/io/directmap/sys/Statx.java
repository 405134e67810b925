package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/** statx(2), <linux/stat.h>: file type, size, device, inode and direct-I/O alignment. */
public final class Statx {
    private static final int AT_FDCWD = -100, AT_EMPTY_PATH = 0x1000;
    private static final int STATX_BASIC_STATS = 0x7ff, STATX_DIOALIGN = 0x2000, STATX_MNT_ID = 0x1000;
    private static final int S_IFMT = 0170000, S_IFREG = 0100000, S_IFDIR = 0040000, S_IFBLK = 0060000,
            S_IFCHR = 0020000, S_IFIFO = 0010000, S_IFSOCK = 0140000, S_IFLNK = 0120000;
    private static final int SIZE = 256;

    // (state, int dirfd, const char*, int flags, unsigned mask, struct statx*)int
    private static final MethodHandle STATX = Libc.errnoHandle("statx",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS));

    public enum Type {
        REGULAR("a regular file"), DIRECTORY("a directory"), BLOCK_DEVICE("a block device"),
        CHAR_DEVICE("a character device"), FIFO("a FIFO (named pipe)"), SOCKET("a socket"),
        SYMLINK("a symbolic link"), OTHER("of an unknown file type");

        private final String description;

        Type(String description) { this.description = description; }

        /** "a FIFO (named pipe)", for messages: "x is a FIFO (named pipe)". */
        public String description() { return description; }
    }

    /** What statx says of a file. dioOffsetAlign is 0 where the fs does not support O_DIRECT. */
    public record Info(Type type, long size, long inode, int devMajor, int devMinor, int rdevMajor, int rdevMinor,
                       int uid, int nlink, int blockSize, int dioMemAlign, int dioOffsetAlign, long mountId) {
        public boolean isRegular() { return type == Type.REGULAR; }
        public String dev() { return devMajor + ":" + devMinor; }
        public String rdev() { return rdevMajor + ":" + rdevMinor; }

        /** The same inode: st_dev and st_ino agree (a name can be reused; these cannot while it lives). */
        public boolean sameInode(Info other) {
            return devMajor == other.devMajor && devMinor == other.devMinor && inode == other.inode;
        }
    }

    private Statx() {}

    public static Info of(Path path) throws SysException {
        return call(AT_FDCWD, path.toString(), 0, path.toString());
    }

    public static Info of(FileHandle file) throws SysException {
        return call(file.fd(), "", AT_EMPTY_PATH, file.path());
    }

    private static Info call(int dirfd, String path, int flags, String what) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(SIZE, 8);
            MemorySegment name = arena.allocateFrom(path);
            int rc = (int) Libc.call(s -> (int) STATX.invokeExact(s, dirfd, name, flags,
                    STATX_BASIC_STATS | STATX_DIOALIGN | STATX_MNT_ID, buf));
            if (rc < 0) {
                int errno = -rc;
                throw new SysException("statx", what, errno, errno == Errno.ENOENT ? "no such file: check the path" : "");
            }
            // struct statx offsets: stx_blksize@4 stx_nlink@16 stx_uid@20 stx_mode@28 (u16) stx_ino@32 stx_size@40
            // stx_rdev_major@128 stx_rdev_minor@132 stx_dev_major@136 stx_dev_minor@140
            // stx_mnt_id@144 stx_dio_mem_align@152 stx_dio_offset_align@156
            int mode = Short.toUnsignedInt(buf.get(JAVA_SHORT, 28));
            Type type = switch (mode & S_IFMT) {
                case S_IFREG -> Type.REGULAR;
                case S_IFDIR -> Type.DIRECTORY;
                case S_IFBLK -> Type.BLOCK_DEVICE;
                case S_IFCHR -> Type.CHAR_DEVICE;
                case S_IFIFO -> Type.FIFO;
                case S_IFSOCK -> Type.SOCKET;
                case S_IFLNK -> Type.SYMLINK;
                default -> Type.OTHER;
            };
            return new Info(type, buf.get(JAVA_LONG, 40), buf.get(JAVA_LONG, 32),
                    buf.get(JAVA_INT, 136), buf.get(JAVA_INT, 140), buf.get(JAVA_INT, 128), buf.get(JAVA_INT, 132),
                    buf.get(JAVA_INT, 20), buf.get(JAVA_INT, 16), buf.get(JAVA_INT, 4),
                    buf.get(JAVA_INT, 152), buf.get(JAVA_INT, 156), buf.get(JAVA_LONG, 144));
        }
    }
}
