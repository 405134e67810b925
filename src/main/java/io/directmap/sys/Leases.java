package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * Read leases (fcntl F_SETLEASE), the kernel's way to hold a writer back: while a read lease is
 * held, another process's open() for writing or truncate() blocks until the holder lets go (or
 * lease-break-time passes). The break is announced by a realtime signal sent to one dedicated
 * platform thread (F_SETSIG + F_SETOWN_EX with F_OWNER_TID, set before the lease), which blocks
 * the signal and reads it from a signalfd; a signal sent to the process would kill the JVM.
 *
 * <p>What keeps this from being a single point of failure:
 * <ul>
 * <li>The signal thread only dispatches. Each breaking lease is handed to its listener on a
 *     virtual thread of its own, so one slow let-go never delays another file's break; a break
 *     reported again while its listener runs (signal and sweep, two signals) is coalesced. A
 *     listener that throws anything is logged with the file, its lease is given back, and the
 *     signal thread carries on.</li>
 * <li>SIGIO is blocked and read from the signalfd too: the kernel sends it instead of the
 *     realtime signal when that one cannot be queued, and it does not say which file broke.
 *     SIGIO, and every quiet second, triggers a sweep: F_GETLEASE on every lease held; a lease
 *     being broken reports its target type (F_UNLCK), not F_RDLCK, and is handled as broken.</li>
 * <li>Should the signal thread die anyway, it is replaced (we chose re-pointing over dropping
 *     everything): a new thread is started, every live lease is pointed at it (F_SETOWN_EX again)
 *     and it sweeps at once, since a signal sent to the dead thread is lost. A lease that cannot
 *     be re-pointed is handled as broken. If the thread dies more than {@value #MAX_DEATHS} times in
 *     {@value #DEATH_WINDOW_S} s, or a replacement cannot start, nothing would listen: every live
 *     lease is handed to its listener as broken (its mappings are taken back, the lease given back)
 *     and new leases are refused with the reason, so nothing claims coherence without a listener.</li>
 * <li>The thread's tid is published before any lease is pointed at it; a caller interrupted while
 *     waiting for it keeps waiting (its interrupt flag is restored afterwards), so no lease is ever
 *     owned by tid 0.</li>
 * </ul>
 * A listener gets the handle whose lease is breaking and must call {@link #release} soon.
 */
public final class Leases implements AutoCloseable {
    private static final int F_SETSIG = 10, F_SETOWN_EX = 15, F_SETLEASE = 1024, F_GETLEASE = 1025;
    private static final int F_RDLCK = 0, F_UNLCK = 2, F_OWNER_TID = 0;
    private static final int SIGIO = 29, ENOLCK = 37;
    private static final int SIG_BLOCK = 0, SFD_CLOEXEC = 02000000, SFD_NONBLOCK = 04000, EFD_CLOEXEC = 02000000;
    private static final short POLLIN = 1;
    private static final long SIGINFO_BYTES = 128, SIGSET_BYTES = 128;
    private static final int MAX_DEATHS = 3;
    private static final long DEATH_WINDOW_S = 10, START_TIMEOUT_S = 10;

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

    /** One lease taken. Known by identity: a descriptor number reused later is another lease. */
    private static final class Lease {
        final FileHandle handle;
        final int fd;
        final Consumer<FileHandle> onBreak;
        volatile boolean armed;                               // F_SETLEASE succeeded
        final AtomicBoolean breaking = new AtomicBoolean();   // handed to its listener (once)

        Lease(FileHandle handle, int fd, Consumer<FileHandle> onBreak) {
            this.handle = handle;
            this.fd = fd;
            this.onBreak = onBreak;
        }
    }

    /** One signal thread and its descriptors; replaced as a whole when the thread dies. */
    private static final class Listener {
        final int number;
        final CountDownLatch ready = new CountDownLatch(1);
        Thread thread;
        volatile int tid, signalFd = -1, wakeFd = -1;
        volatile SysException startFailure;
        volatile boolean sweepNow;

        Listener(int number) {
            this.number = number;
        }
    }

    private final int signal;
    private final Map<Integer, Lease> byFd = new ConcurrentHashMap<>();
    /** Orders pointing leases at a thread (take) against re-pointing them at its replacement. */
    private final Object owners = new Object();
    private final ArrayDeque<Long> deaths = new ArrayDeque<>();     // guarded by owners
    private volatile Listener current;
    private volatile SysException gaveUp;
    private volatile boolean closing;

    /** A lease thread of its own (tests); programs use {@link #shared}. */
    Leases() throws SysException {
        try {
            this.signal = (int) SIGRTMIN.invokeExact() + 2;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        current = start(0);
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
        return l;
    }

    /** The tid leases are pointed at now (0 when no thread listens). */
    int tid() {
        Listener l = current;
        return l == null ? 0 : l.tid;
    }

    /** How many times the signal thread was replaced after dying. */
    public int restarts() {
        Listener l = current;
        return l == null ? -1 : l.number;
    }

    /**
     * Takes a read lease on h (opened read-only). Fails with EAGAIN when some process has the file
     * open for writing, EACCES when the caller neither owns the file nor has CAP_LEASE, and with
     * the reason when no thread can listen for breaks. onBreak runs on a thread of its own when
     * another process wants to write.
     */
    public void take(FileHandle h, Consumer<FileHandle> onBreak) throws SysException {
        int fd = h.fd();
        listening();
        Lease lease = new Lease(h, fd, onBreak);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = Libc.state();
            synchronized (owners) {
                byFd.put(fd, lease);
                Listener l = listening();
                check((int) FCNTL_INT.invokeExact(state, fd, F_SETSIG, signal), state, "fcntl F_SETSIG", h);
                MemorySegment owner = arena.allocate(8);
                owner.set(JAVA_INT, 0, F_OWNER_TID);
                owner.set(JAVA_INT, 4, l.tid);
                check((int) FCNTL_PTR.invokeExact(state, fd, F_SETOWN_EX, owner), state, "fcntl F_SETOWN_EX", h);
                check((int) FCNTL_INT.invokeExact(state, fd, F_SETLEASE, F_RDLCK), state, "fcntl F_SETLEASE F_RDLCK", h);
                lease.armed = true;
            }
        } catch (SysException e) {
            byFd.remove(fd, lease);
            throw e;
        } catch (Throwable t) {
            byFd.remove(fd, lease);
            throw new IllegalStateException(t);
        }
    }

    /** The live signal thread; replaces a dead one first. Fails when there is none and will be none. */
    private Listener listening() throws SysException {
        Listener l = watchdog();
        if (l == null || closing) {
            SysException why = gaveUp;
            throw why != null ? why : new SysException("fcntl F_SETLEASE", "lease thread", Errno.EBADF, "the lease thread was closed");
        }
        if (l.tid == 0) throw new IllegalStateException("lease thread " + l.thread.getName() + " has no tid");
        return l;
    }

    /** The live signal thread, after replacing it if it died without starting its replacement; null if none. */
    private Listener watchdog() {
        Listener l = current;
        if (l != null && !l.thread.isAlive() && !closing) {
            log("the lease thread " + l.thread.getName() + " is gone; starting another and pointing every lease at it", null);
            replace(l, null);
            l = current;
        }
        return l;
    }

    /** Gives the lease back (lets a blocked writer go on). Harmless when none is held. */
    public void release(FileHandle h) {
        int fd;
        try {
            fd = h.fd();
        } catch (SysException closed) {
            return;
        }
        Lease l = byFd.get(fd);
        if (l != null && l.handle == h) byFd.remove(fd, l);
        try {
            MemorySegment state = Libc.state();
            int rc = (int) FCNTL_INT.invokeExact(state, fd, F_SETLEASE, F_UNLCK);
            if (rc < 0 && Libc.errno(state) != Errno.EAGAIN) {
                // EAGAIN: no lease held. Anything else leaves the kernel to revoke it after lease-break-time.
                log("releasing the lease on " + h.path() + " failed: fcntl F_SETLEASE F_UNLCK: "
                        + Errno.name(Libc.errno(state)) + "; the kernel revokes it after lease-break-time", null);
            }
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** True while h holds an unbroken read lease (F_GETLEASE: a lease being broken reports F_UNLCK). */
    public boolean held(FileHandle h) {
        watchdog();
        try {
            return getLease(h.fd()) == F_RDLCK;
        } catch (SysException e) {
            return false;
        }
    }

    private static int getLease(int fd) {
        try {
            return (int) FCNTL_INT.invokeExact(Libc.state(), fd, F_GETLEASE, 0);
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

    /** Starts signal thread number n and waits (bounded, not interruptibly) until it published its tid. */
    private Listener start(int n) throws SysException {
        Listener l = new Listener(n);
        l.thread = Thread.ofPlatform().daemon().name(n == 0 ? "dmap-lease-breaks" : "dmap-lease-breaks-" + n)
                .unstarted(() -> run(l));
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

    private void run(Listener l) {
        Throwable death = null;
        try {
            loop(l);
        } catch (Throwable t) {
            death = t;
        } finally {
            closeQuietly(l.signalFd);
            closeQuietly(l.wakeFd);
        }
        if (l.ready.getCount() > 0) {
            if (l.startFailure == null) l.startFailure = new SysException("lease thread", l.thread.getName(), ENOLCK, String.valueOf(death));
            l.ready.countDown();
            return;
        }
        if (closing) return;
        log("the lease thread " + l.thread.getName() + " died: " + death + "; starting another and pointing every lease at it", death);
        replace(l, death);
    }

    /** Starts a thread in place of dead, re-points every lease at it, sweeps; or drops every lease if it cannot. */
    private void replace(Listener dead, Throwable cause) {
        Listener next = null;
        synchronized (owners) {
            if (current != dead || closing) return;
            long now = System.nanoTime();
            deaths.addLast(now);
            while (now - deaths.peekFirst() > TimeUnit.SECONDS.toNanos(DEATH_WINDOW_S)) deaths.removeFirst();
            SysException failure = null;
            if (deaths.size() > MAX_DEATHS) {
                failure = new SysException("lease thread", dead.thread.getName(), ENOLCK, "it died " + deaths.size() + " times in "
                        + DEATH_WINDOW_S + " s (last: " + cause + "); no lease is taken any more, so files are mapped through "
                        + "the page cache; restart the program");
            } else {
                try {
                    next = start(dead.number + 1);
                } catch (SysException e) {
                    failure = e;
                }
            }
            if (next == null) {
                gaveUp = failure;
                current = null;
                log("no thread listens for lease breaks: " + failure.getMessage()
                        + "; every lease is handed to its listener as broken", null);
                for (Lease lease : List.copyOf(byFd.values())) dispatch(lease);
                return;
            }
            current = next;
            for (Lease lease : List.copyOf(byFd.values())) {
                if (!repoint(lease, next.tid)) dispatch(lease);
            }
            next.sweepNow = true;
        }
        wake(next);
    }

    /** F_SETOWN_EX of lease to tid; false if it failed (the caller treats the lease as broken). */
    private boolean repoint(Lease lease, int tid) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment owner = arena.allocate(8);
            owner.set(JAVA_INT, 0, F_OWNER_TID);
            owner.set(JAVA_INT, 4, tid);
            MemorySegment state = Libc.state();
            if ((int) FCNTL_PTR.invokeExact(state, lease.fd, F_SETOWN_EX, owner) == 0) return true;
            log("pointing the lease on " + lease.handle.path() + " at the new lease thread failed: fcntl F_SETOWN_EX: "
                    + Errno.name(Libc.errno(state)) + "; its mappings are taken back", null);
            return false;
        } catch (Throwable t) {
            return false;
        }
    }

    private void loop(Listener l) throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = Libc.state();
            MemorySegment set = arena.allocate(SIGSET_BYTES);
            int r = (int) SIGEMPTYSET.invokeExact(set);
            r = (int) SIGADDSET.invokeExact(set, signal);
            r = (int) SIGADDSET.invokeExact(set, SIGIO);
            r = (int) SIGMASK.invokeExact(SIG_BLOCK, set, MemorySegment.NULL);
            if (r != 0) throw new SysException("pthread_sigmask", "lease signals", r, "");
            int sfd = (int) SIGNALFD.invokeExact(state, -1, set, SFD_CLOEXEC | SFD_NONBLOCK);
            if (sfd < 0) throw new SysException("signalfd", "lease signals", Libc.errno(state), "");
            l.signalFd = sfd;
            int efd = (int) EVENTFD.invokeExact(state, 0, EFD_CLOEXEC);
            if (efd < 0) throw new SysException("eventfd", "lease thread", Libc.errno(state), "");
            l.wakeFd = efd;
            l.tid = (int) GETTID.invokeExact();
            l.ready.countDown();
            MemorySegment fds = arena.allocate(16);
            MemorySegment info = arena.allocate(SIGINFO_BYTES);
            MemorySegment count = arena.allocate(JAVA_LONG);
            while (!closing) {
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
                    int fd = info.get(JAVA_INT, 20);
                    Lease lease;
                    synchronized (owners) {
                        // Under the lock take() holds while it leases fd: a lease taken again since the
                        // signal was queued is seen here, never unlocked as if no one listened for it.
                        lease = byFd.get(fd);
                        if (lease == null) {
                            // A lease no one listens for any more: never leave the writer waiting for lease-break-time.
                            int u = (int) FCNTL_INT.invokeExact(state, fd, F_SETLEASE, F_UNLCK);
                        }
                    }
                    if (lease == null) continue;
                    broken(lease);
                }
                if (sweep || l.sweepNow) {
                    l.sweepNow = false;
                    for (Lease lease : List.copyOf(byFd.values())) {
                        if (lease.armed && !lease.breaking.get() && getLease(lease.fd) != F_RDLCK) broken(lease);
                    }
                }
            }
        }
    }

    /** On the signal thread: lease is breaking. */
    private void broken(Lease lease) {
        if (byFd.get(lease.fd) != lease || lease.breaking.get()) return;
        if (Faults.fire(FaultPoint.LEASE_THREAD_DIE)) {
            throw new Error("fault point lease_thread_die: the lease thread dies before handling the break of "
                    + lease.handle.path());
        }
        dispatch(lease);
    }

    /** Hands lease to its listener on a thread of its own, once; a break reported again meanwhile is coalesced. */
    private void dispatch(Lease lease) {
        if (byFd.get(lease.fd) != lease || !lease.breaking.compareAndSet(false, true)) return;
        try {
            Thread.ofVirtual().name("dmap-lease-break " + lease.handle.path()).start(() -> letGo(lease));
        } catch (Throwable t) {
            lease.breaking.set(false);              // the next sweep tries again
            throw t;
        }
    }

    private void letGo(Lease lease) {
        if (byFd.get(lease.fd) != lease) return;
        try {
            lease.onBreak.accept(lease.handle);
        } catch (Throwable t) {
            log("the lease break of " + lease.handle.path() + " failed: " + t + "; the lease is given back", t);
            release(lease.handle);
        }
    }

    private void wake(Listener l) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocate(JAVA_LONG);
            one.set(JAVA_LONG, 0, 1);
            long w = (long) WRITE.invokeExact(Libc.state(), l.wakeFd, one, 8L);
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

    /** One line on stderr (the stack trace too with DMAP_DEBUG set): this runs where no caller can be told. */
    private static void log(String message, Throwable t) {
        System.err.println("dmap: " + message);
        if (t != null && System.getenv("DMAP_DEBUG") != null) t.printStackTrace();
    }

    @Override
    public void close() {
        closing = true;
        Listener l = current;
        if (l != null) wake(l);
    }
}
