package io.directmap.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/**
 * openat2(2) (Linux 5.6, syscall 437), {@code <uapi/linux/openat2.h>}: opens a name under a
 * directory descriptor with RESOLVE_BENEATH, so the kernel itself refuses every way out of the
 * directory (a "..", an absolute symlink, a symlink that leads out, a /proc magic link) with EXDEV
 * or ELOOP, at the moment of the open: no check-then-open race with a symlink swapped in between.
 * A symlink that stays inside the directory is followed. The file is opened without blocking
 * (O_NONBLOCK), so a FIFO is refused after fstat instead of waiting for a writer.
 */
public final class OpenBeneath {
    private static final long SYS_OPENAT2 = 437;
    private static final int AT_FDCWD = -100;
    private static final long O_RDONLY = 0, O_NOCTTY = 0400, O_NONBLOCK = 04000, O_DIRECTORY = 0200000,
            O_CLOEXEC = 02000000, O_PATH = 010000000;
    private static final long RESOLVE_NO_MAGICLINKS = 0x02, RESOLVE_BENEATH = 0x08;
    /** Refused because the name leads out of the directory (RESOLVE_BENEATH). */
    public static final int EXDEV = 18;
    /** Refused because of too many symlinks, or a magic link (RESOLVE_NO_MAGICLINKS). */
    public static final int ELOOP = 40;

    // (state, long nr, ...long dirfd, long pathname*, long how*, long size)long
    private static final MethodHandle SYSCALL = Libc.errnoHandle("syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            Linker.Option.firstVariadicArg(1));

    private OpenBeneath() {}

    /**
     * The directory every later {@link #open} stays under (O_PATH: no read access needed, nothing read).
     *
     * @param dir the directory
     * @return its descriptor; close it when done
     * @throws SysException when it is missing or not a directory (ENOTDIR), naming it
     */
    public static FileHandle root(Path dir) throws SysException {
        int fd = openat2(AT_FDCWD, dir.toString(), O_PATH | O_DIRECTORY | O_CLOEXEC, 0, dir.toString());
        return FileHandle.adopt(dir.toString(), fd);
    }

    /**
     * Opens relative (a name under root, no leading slash) read-only, refusing any way out of root.
     *
     * @param root a descriptor from {@link #root}
     * @param relative the name under it
     * @return the open file (a FIFO or device opens without blocking: check its type before reading)
     * @throws SysException EXDEV or ELOOP for a name that leads out of root, ENOENT, ENOTDIR, EACCES
     */
    public static FileHandle open(FileHandle root, String relative) throws SysException {
        String what = root.path() + "/" + relative;
        int fd = openat2(root.fd(), relative, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, what);
        return FileHandle.adopt(what, fd);
    }

    private static int openat2(int dirfd, String name, long flags, long resolve, String what) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment path = arena.allocateFrom(name);
            MemorySegment how = arena.allocate(24, 8);   // struct open_how { u64 flags; u64 mode; u64 resolve; }
            how.set(JAVA_LONG, 0, flags);
            how.set(JAVA_LONG, 8, 0L);
            how.set(JAVA_LONG, 16, resolve);
            long rc = Libc.call(s -> (long) SYSCALL.invokeExact(s, SYS_OPENAT2, (long) dirfd, path.address(), how.address(), 24L));
            if (rc < 0) {
                int errno = (int) -rc;
                throw new SysException("openat2", what, errno, switch (errno) {
                    case EXDEV -> "the name leads out of the directory (\"..\", an absolute symlink or one that points out)";
                    case ELOOP -> "too many symlinks, or a /proc magic link";
                    case Errno.ENOENT -> "no such file";
                    case Errno.ENOSYS -> "the kernel is older than 5.6 (no openat2)";
                    default -> "";
                });
            }
            return (int) rc;
        }
    }

    static { assert JAVA_INT.byteSize() == 4; }
}
