package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The platform thread that lease breaks are signalled to (signalfd(2), eventfd(2), poll(2),
 * pthread_sigmask(3)): it blocks the lease signal and SIGIO and reads them from a signalfd, since
 * a signal delivered to the process would kill the JVM. It only reports what it reads to its
 * {@link Breaks}: which descriptor's lease is breaking, or that every lease should be looked at
 * (SIGIO, which the kernel sends when the realtime signal cannot be queued and which does not say
 * which file broke; a quiet second; a request after a replacement). What happens then (dispatch to
 * listeners, replacing a dead thread) is {@link Leases}'s.
 */
final class LeaseSignalThread {
    private static final int SIGIO = 29, ENOLCK = 37;
    private static final int SIG_BLOCK = 0, SFD_CLOEXEC = 02000000, SFD_NONBLOCK = 04000, EFD_CLOEXEC = 02000000;
    private static final short POLLIN = 1;
    private static final long SIGINFO_BYTES = 128, SIGSET_BYTES = 128;
    static final long START_TIMEOUT_S = 10;

    // ()int
    private static final MethodHandle GETTID = Libc.plainHandle("gettid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle SIGRTMIN = Libc.plainHandle("__libc_current_sigrtmin", FunctionDescriptor.of(JAVA_INT));
    // (sigset_t*)int, (sigset_t*, int)int, (int how, const sigset_t*, sigset_t*)int: the error is the result
    private static final MethodHandle SIGEMPTYSET = Libc.plainHandle("sigemptyset", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle SIGADDSET = Libc.plainHandle("sigaddset", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SIGMASK = Libc.plainHandle("pthread_sigmask",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    // (state, int fd, const sigset_t*, int flags)int
    private static final MethodHandle SIGNALFD = Libc.errnoHandle("signalfd",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    // (state, unsigned initval, int flags)int
    private static final MethodHandle EVENTFD = Libc.errnoHandle("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    // (state, struct pollfd*, nfds_t, int timeout)int
    private static final MethodHandle POLL = Libc.errnoHandle("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    // (state, int, void*, size_t)ssize_t
    private static final MethodHandle READ = Libc.errnoHandle("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE = Libc.errnoHandle("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    // (state, int)int
    private static final MethodHandle CLOSE = Libc.errnoHandle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));

    /** What the thread reports to, on the thread itself. */
    interface Breaks {
        /** True once no thread should listen any more: the loop ends. */
        boolean closing();

        /** The lease on fd is breaking (a realtime signal named it). */
        void signalled(int fd) throws SysException;

        /** Look at every lease: a signal may have been lost. */
        void sweep();

        /** The thread died after it had started (death: what it threw, or null when its loop ended). */
        void died(LeaseSignalThread thread, Throwable death);
    }

    private final int number;
    private final int signal;
    private final Breaks breaks;
    private final CountDownLatch ready = new CountDownLatch(1);
    private final Thread thread;
    private volatile int tid, signalFd = -1, wakeFd = -1;
    private volatile SysException startFailure;
    private volatile boolean sweepNow;

    private LeaseSignalThread(int number, int signal, Breaks breaks) {
        this.number = number;
        this.signal = signal;
        this.breaks = breaks;
        this.thread = Thread.ofPlatform().daemon().name(number == 0 ? "dmap-lease-breaks" : "dmap-lease-breaks-" + number)
                .unstarted(this::run);
    }

    /** The realtime signal that announces a lease break: SIGRTMIN+2 (glibc keeps the first two for itself). */
    static int leaseSignal() {
        try {
            return (int) SIGRTMIN.invokeExact() + 2;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Starts signal thread number n and waits (bounded, not interruptibly) until it published its tid. */
    static LeaseSignalThread start(int n, int signal, Breaks breaks) throws SysException {
        LeaseSignalThread l = new LeaseSignalThread(n, signal, breaks);
        l.thread.start();
        boolean interrupted = false;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(START_TIMEOUT_S);
        try {
            while (true) {
                try {
                    if (!l.ready.await(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                        throw new SysException("lease thread start", l.thread.getName(), ENOLCK,
                                "it did not start in " + START_TIMEOUT_S + " s; leases cannot be taken");
                    }
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        } finally {
            if (interrupted) Thread.currentThread().interrupt();
        }
        if (l.startFailure != null) throw l.startFailure;
        return l;
    }

    /** How many threads came before this one (0: the first). */
    int number() { return number; }
    /** Its kernel thread id, which leases are pointed at (0 until it started). */
    int tid() { return tid; }
    String name() { return thread.getName(); }
    boolean isAlive() { return thread.isAlive(); }

    /** Asks for a sweep on the next wake-up. */
    void sweepSoon() {
        sweepNow = true;
    }

    private void run() {
        Throwable death = null;
        try {
            loop();
        } catch (Throwable t) {
            death = t;
        } finally {
            closeQuietly(signalFd);
            closeQuietly(wakeFd);
        }
        if (ready.getCount() > 0) {
            if (startFailure == null) startFailure = new SysException("lease thread", thread.getName(), ENOLCK, String.valueOf(death));
            ready.countDown();
            return;
        }
        breaks.died(this, death);
    }

    private void loop() throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = Libc.state();
            MemorySegment set = arena.allocate(SIGSET_BYTES);
            int r = (int) SIGEMPTYSET.invokeExact(set);
            r = (int) SIGADDSET.invokeExact(set, signal);
            r = (int) SIGADDSET.invokeExact(set, SIGIO);
            r = (int) SIGMASK.invokeExact(SIG_BLOCK, set, MemorySegment.NULL);
            if (r != 0) throw new SysException("pthread_sigmask", "lease signals", r, "");
            int sfd = (int) Libc.check("signalfd", "lease signals", "",
                    s -> (int) SIGNALFD.invokeExact(s, -1, set, SFD_CLOEXEC | SFD_NONBLOCK));
            signalFd = sfd;
            int efd = (int) Libc.check("eventfd", "lease thread", "", s -> (int) EVENTFD.invokeExact(s, 0, EFD_CLOEXEC));
            wakeFd = efd;
            tid = (int) GETTID.invokeExact();
            ready.countDown();
            MemorySegment fds = arena.allocate(16);
            MemorySegment info = arena.allocate(SIGINFO_BYTES);
            MemorySegment count = arena.allocate(JAVA_LONG);
            while (!breaks.closing()) {
                fds.set(JAVA_INT, 0, sfd);
                fds.set(JAVA_SHORT, 4, POLLIN);
                fds.set(JAVA_SHORT, 6, (short) 0);
                fds.set(JAVA_INT, 8, efd);
                fds.set(JAVA_SHORT, 12, POLLIN);
                fds.set(JAVA_SHORT, 14, (short) 0);
                int n = (int) POLL.invokeExact(state, fds, 2L, 1000);
                if (n < 0 && Libc.errno(state) != Errno.EINTR) {
                    throw new SysException("poll", "lease signalfd", Libc.errno(state), "");
                }
                // A quiet second, SIGIO, or a new thread: look at every lease (a lost signal is no lost break).
                boolean sweep = n == 0;
                if (n > 0 && (fds.get(JAVA_SHORT, 14) & POLLIN) != 0) {
                    long w = (long) READ.invokeExact(state, efd, count, 8L);
                }
                while ((long) READ.invokeExact(state, sfd, info, SIGINFO_BYTES) == SIGINFO_BYTES) {
                    if (info.get(JAVA_INT, 0) == SIGIO) {
                        sweep = true;                     // the realtime queue overflowed: which fd is unknown
                        continue;
                    }
                    breaks.signalled(info.get(JAVA_INT, 20));   // struct signalfd_siginfo: ssi_fd@20
                }
                if (sweep || sweepNow) {
                    sweepNow = false;
                    breaks.sweep();
                }
            }
        }
    }

    /** Wakes the thread from its poll (to sweep, or to see it is closing). */
    void wake() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocate(JAVA_LONG);
            one.set(JAVA_LONG, 0, 1);
            long w = (long) WRITE.invokeExact(Libc.state(), wakeFd, one, 8L);
        } catch (Throwable ignored) {
            // the thread also wakes up every second
        }
    }

    private static void closeQuietly(int fd) {
        if (fd < 0) return;
        try {
            int c = (int) CLOSE.invokeExact(Libc.state(), fd);
        } catch (Throwable ignored) {
            // nothing more to do with it
        }
    }
}
