package io.directmap.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.invoke.MethodHandle;

/**
 * Whether anyone has a file open for writing, asked the way fcntl(2) "Leases" allows: a read
 * lease (F_SETLEASE F_RDLCK) is refused with EAGAIN while the inode has any writable descriptor
 * (i_writecount &gt; 0: this process's own included). Taken and given back at once; no signal is
 * set up, since a break in between only waits for the F_UNLCK that follows.
 */
public final class OpenWriters {
    private static final int F_SETLEASE = 1024, F_RDLCK = 0, F_UNLCK = 2;

    // (state, int fd, int cmd, ...int)int
    private static final MethodHandle FCNTL = Libc.errnoHandle("fcntl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2));

    private OpenWriters() {}

    /**
     * True when some descriptor (any process's) has readOnly's inode open for writing. readOnly
     * must be opened O_RDONLY. Fails when a lease cannot be taken for another reason (EACCES: not
     * the owner and no CAP_LEASE; EINVAL: the file system has no leases).
     */
    public static boolean any(FileHandle readOnly) throws SysException {
        int fd = readOnly.fd();
        long rc = Libc.call(s -> (int) FCNTL.invokeExact(s, fd, F_SETLEASE, F_RDLCK));
        if (rc < 0) {
            if (-rc == Errno.EAGAIN) return true;
            throw new SysException("fcntl F_SETLEASE F_RDLCK", readOnly.path(), (int) -rc,
                    -rc == Errno.EACCES ? "only the file's owner (or CAP_LEASE) may ask; run as root" : "");
        }
        Libc.check("fcntl F_SETLEASE F_UNLCK", readOnly.path(), "",
                s -> (int) FCNTL.invokeExact(s, fd, F_SETLEASE, F_UNLCK));
        return false;
    }
}
