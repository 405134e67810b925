package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.function.Consumer;

/**
 * Read leases (fcntl F_SETLEASE), the kernel's way to hold a writer back: while a read lease is
 * held, another process's open() for writing or truncate() blocks until the holder lets go (or
 * lease-break-time passes). The break is announced by a realtime signal sent to one dedicated
 * platform thread (F_SETSIG + F_SETOWN_EX with F_OWNER_TID, set before the lease), which blocks
 * the signal and reads it from a signalfd; a signal sent to the process would kill the JVM.
 * A listener gets the handle whose lease is breaking and must call {@link #release} soon.
 */
public final class Leases implements AutoCloseable {
    private static final int F_SETSIG = 10, F_SETOWN_EX = 15, F_SETLEASE = 1024, F_GETLEASE = 1025;
    private static final int F_RDLCK = 0, F_UNLCK = 2, F_OWNER_TID = 0;
    private static final int SIG_BLOCK = 0, SFD_CLOEXEC = 02000000, SFD_NONBLOCK = 04000, EFD_CLOEXEC = 02000000;
    private static final short POLLIN = 1;
    private static final long SIGINFO_BYTES = 128, SIGSET_BYTES = 128;

    private static final MethodHandle FCNTL_INT = Libc.errnoHandle("fcntl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle FCNTL_PTR = Libc.errnoHandle("fcntl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle GETTID = Libc.plainHandle("gettid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle SIGRTMIN = Libc.plainHandle("__libc_current_sigrtmin", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle SIGEMPTYSET = Libc.plainHandle("sigemptyset", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle SIGADDSET = Libc.plainHandle("sigaddset", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SIGMASK = Libc.plainHandle("pthread_sigmask",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle SIGNALFD = Libc.errnoHandle("signalfd",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle EVENTFD = Libc.errnoHandle("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle POLL = Libc.errnoHandle("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle READ = Libc.errnoHandle("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE = Libc.errnoHandle("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle CLOSE = Libc.errnoHandle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));

    private static volatile Leases shared;

    private final int signal;
    private final Map<Integer, FileHandle> byFd = new ConcurrentHashMap<>();
    private final Map<Integer, Consumer<FileHandle>> listeners = new ConcurrentHashMap<>();
    private final Thread thread;
    private final CountDownLatch ready = new CountDownLatch(1);
    private volatile int tid, signalFd = -1, wakeFd = -1;
    private volatile SysException startFailure;
    private volatile boolean closing;

    private Leases() {
        try {
            this.signal = (int) SIGRTMIN.invokeExact() + 2;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        this.thread = Thread.ofPlatform().daemon().name("dmap-lease-breaks").unstarted(this::loop);
        thread.start();
        try {
            ready.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The process's one lease thread, started on first use. */
    public static Leases shared() throws SysException {
        Leases l = shared;
        if (l == null) {
            synchronized (Leases.class) {
                if (shared == null) shared = new Leases();
                l = shared;
            }
        }
        if (l.startFailure != null) throw l.startFailure;
        return l;
    }

    /**
     * Takes a read lease on h (opened read-only). Fails with EAGAIN when some process has the file
     * open for writing, EACCES when the caller neither owns the file nor has CAP_LEASE.
     * onBreak runs on the lease thread when another process wants to write.
     */
    public void take(FileHandle h, Consumer<FileHandle> onBreak) throws SysException {
        int fd = h.fd();
        listeners.put(fd, onBreak);
        byFd.put(fd, h);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = Libc.state();
            check((int) FCNTL_INT.invokeExact(state, fd, F_SETSIG, signal), state, "fcntl F_SETSIG", h);
            MemorySegment owner = arena.allocate(8);
            owner.set(JAVA_INT, 0, F_OWNER_TID);
            owner.set(JAVA_INT, 4, tid);
            check((int) FCNTL_PTR.invokeExact(state, fd, F_SETOWN_EX, owner), state, "fcntl F_SETOWN_EX", h);
            check((int) FCNTL_INT.invokeExact(state, fd, F_SETLEASE, F_RDLCK), state, "fcntl F_SETLEASE F_RDLCK", h);
        } catch (SysException e) {
            listeners.remove(fd);
            byFd.remove(fd);
            throw e;
        } catch (Throwable t) {
            listeners.remove(fd);
            byFd.remove(fd);
            throw new IllegalStateException(t);
        }
    }

    /** Gives the lease back (lets a blocked writer go on). Harmless when none is held. */
    public void release(FileHandle h) {
        int fd;
        try {
            fd = h.fd();
        } catch (SysException closed) {
            return;
        }
        listeners.remove(fd);
        byFd.remove(fd);
        try {
            MemorySegment state = Libc.state();
            int rc = (int) FCNTL_INT.invokeExact(state, fd, F_SETLEASE, F_UNLCK);
            if (rc < 0 && Libc.errno(state) != Errno.EAGAIN) {
                // EAGAIN: no lease held. Anything else leaves the kernel to revoke it after lease-break-time.
                System.getLogger("io.directmap").log(System.Logger.Level.WARNING,
                        "releasing the lease on " + h.path() + " failed: " + Errno.name(Libc.errno(state)));
            }
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** True while h holds an unbroken read lease. */
    public boolean held(FileHandle h) {
        try {
            MemorySegment state = Libc.state();
            return (int) FCNTL_INT.invokeExact(state, h.fd(), F_GETLEASE, 0) == F_RDLCK;
        } catch (SysException e) {
            return false;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static void check(int rc, MemorySegment state, String call, FileHandle h) throws SysException {
        if (rc < 0) {
            int errno = Libc.errno(state);
            String hint = switch (errno) {
                case Errno.EAGAIN -> "another process has it open for writing";
                case Errno.EACCES -> "only the file's owner (or CAP_LEASE) may take a lease";
                default -> "";
            };
            throw new SysException(call, h.path(), errno, hint);
        }
    }

    private void loop() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = Libc.state();
            tid = (int) GETTID.invokeExact();
            MemorySegment set = arena.allocate(SIGSET_BYTES);
            int r = (int) SIGEMPTYSET.invokeExact(set);
            r = (int) SIGADDSET.invokeExact(set, signal);
            r = (int) SIGMASK.invokeExact(SIG_BLOCK, set, MemorySegment.NULL);
            if (r != 0) throw new SysException("pthread_sigmask", "lease signal", r, "");
            int sfd = (int) SIGNALFD.invokeExact(state, -1, set, SFD_CLOEXEC | SFD_NONBLOCK);
            if (sfd < 0) throw new SysException("signalfd", "lease signal", Libc.errno(state), "");
            int efd = (int) EVENTFD.invokeExact(state, 0, EFD_CLOEXEC);
            if (efd < 0) throw new SysException("eventfd", "lease thread", Libc.errno(state), "");
            signalFd = sfd;
            wakeFd = efd;
            ready.countDown();
            MemorySegment fds = arena.allocate(16);
            MemorySegment info = arena.allocate(SIGINFO_BYTES);
            while (!closing) {
                fds.set(JAVA_INT, 0, sfd);
                fds.set(JAVA_SHORT, 4, POLLIN);
                fds.set(JAVA_SHORT, 6, (short) 0);
                fds.set(JAVA_INT, 8, efd);
                fds.set(JAVA_SHORT, 12, POLLIN);
                fds.set(JAVA_SHORT, 14, (short) 0);
                int n = (int) POLL.invokeExact(state, fds, 2L, 1000);
                if (n <= 0) continue;
                while ((long) READ.invokeExact(state, sfd, info, SIGINFO_BYTES) == SIGINFO_BYTES) {
                    int fd = info.get(JAVA_INT, 20);
                    FileHandle h = byFd.get(fd);
                    Consumer<FileHandle> l = listeners.get(fd);
                    if (h == null || l == null) {
                        // A lease no one listens for any more: never leave the writer waiting for lease-break-time.
                        int u = (int) FCNTL_INT.invokeExact(state, fd, F_SETLEASE, F_UNLCK);
                        continue;
                    }
                    try {
                        l.accept(h);
                    } catch (RuntimeException e) {
                        System.getLogger("io.directmap").log(System.Logger.Level.ERROR,
                                "lease break of " + h.path() + " failed; releasing the lease", e);
                        release(h);
                    }
                }
            }
            int c = (int) CLOSE.invokeExact(state, sfd);
            c = (int) CLOSE.invokeExact(state, efd);
        } catch (SysException e) {
            startFailure = e;
            ready.countDown();
        } catch (Throwable t) {
            startFailure = new SysException("lease thread", "", 0, t.toString());
            ready.countDown();
        }
    }

    @Override
    public void close() {
        closing = true;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocate(JAVA_LONG);
            one.set(JAVA_LONG, 0, 1);
            long w = (long) WRITE.invokeExact(Libc.state(), wakeFd, one, 8L);
        } catch (Throwable ignored) {
            // the thread also wakes up every second
        }
    }
}
