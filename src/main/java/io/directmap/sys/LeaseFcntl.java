package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * The lease calls of fcntl(2) ("Leases", "Managing signals"; <uapi/asm-generic/fcntl.h>,
 * <linux/fcntl.h>): F_SETSIG and F_SETOWN_EX say which signal announces a break and which thread
 * gets it, F_SETLEASE takes or gives back a lease, F_GETLEASE says which one is held. The thread
 * that gets the signal is {@link LeaseSignalThread}; {@link Leases} holds the two together.
 */
final class LeaseFcntl {
    /**
     * Lease types: a read lease (breaks when someone opens for writing), a write lease (breaks when
     * someone opens at all, readers too), none (also what F_GETLEASE reports while a lease is being
     * broken).
     */
    static final int F_RDLCK = 0, F_WRLCK = 1, F_UNLCK = 2;
    private static final int F_SETSIG = 10, F_SETOWN_EX = 15, F_SETLEASE = 1024, F_GETLEASE = 1025;
    private static final int F_OWNER_TID = 0;

    // (state, int fd, int cmd, ...int)int
    private static final MethodHandle FCNTL_INT = Libc.errnoHandle("fcntl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2));
    // (state, int fd, int cmd, ...struct f_owner_ex*)int
    private static final MethodHandle FCNTL_PTR = Libc.errnoHandle("fcntl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS), Linker.Option.firstVariadicArg(2));

    private LeaseFcntl() {}

    /**
     * Takes a lease of type (F_RDLCK or F_WRLCK) on fd (h's descriptor), its break announced by
     * signal to thread tid: F_SETSIG, F_SETOWN_EX, F_SETLEASE, in that order, so no break can be
     * signalled before it has somewhere to go. A write lease needs that no other descriptor of the
     * file is open, for reading or writing, and no other lease is held on it (fs/locks.c,
     * check_conflicting_open: i_writecount and i_readcount must count only the caller's). Fails with the call that failed and what a person can do.
     */
    static void take(FileHandle h, int fd, int signal, int tid, int type) throws SysException {
        String set = type == F_WRLCK ? "fcntl F_SETLEASE F_WRLCK" : "fcntl F_SETLEASE F_RDLCK";
        check(Libc.call(s -> (int) FCNTL_INT.invokeExact(s, fd, F_SETSIG, signal)), "fcntl F_SETSIG", h, type);
        check(pointAt(fd, tid), "fcntl F_SETOWN_EX", h, type);
        check(Libc.call(s -> (int) FCNTL_INT.invokeExact(s, fd, F_SETLEASE, type)), set, h, type);
    }

    private static void check(long rc, String call, FileHandle h, int type) throws SysException {
        if (rc < 0) {
            int errno = (int) -rc;
            String hint = switch (errno) {
                case Errno.EAGAIN -> type == F_WRLCK
                        ? "another descriptor has it open (for reading or writing), or another lease is held on it"
                        : "another process has it open for writing";
                case Errno.EACCES -> "only the file's owner (or CAP_LEASE) may take a lease";
                default -> "";
            };
            throw new SysException(call, h.path(), errno, hint);
        }
    }

    /** F_SETOWN_EX (F_OWNER_TID): fd's lease breaks are signalled to thread tid. 0, or minus the errno. */
    static int pointAt(int fd, int tid) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            // struct f_owner_ex { int type; pid_t pid; }
            MemorySegment owner = arena.allocate(8);
            owner.set(JAVA_INT, 0, F_OWNER_TID);
            owner.set(JAVA_INT, 4, tid);
            return (int) Libc.call(s -> (int) FCNTL_PTR.invokeExact(s, fd, F_SETOWN_EX, owner));
        }
    }

    /** F_SETLEASE F_UNLCK: gives fd's lease back. 0, or minus the errno (EAGAIN: none was held). */
    static int unlock(int fd) throws SysException {
        return (int) Libc.call(s -> (int) FCNTL_INT.invokeExact(s, fd, F_SETLEASE, F_UNLCK));
    }

    /** F_GETLEASE: the lease held on fd (F_RDLCK, F_WRLCK, or F_UNLCK for none or one being broken), or -1 if the call failed. */
    static int get(int fd) throws SysException {
        long rc = Libc.call(s -> (int) FCNTL_INT.invokeExact(s, fd, F_GETLEASE, 0));
        return rc < 0 ? -1 : (int) rc;
    }
}
