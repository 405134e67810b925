package io.directmap.sys;

import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * Leases (fcntl F_SETLEASE), the kernel's way to hold other processes back: while a read lease is
 * held, another process's open() for writing or truncate() blocks until the holder lets go (or
 * lease-break-time passes); while a write lease is held, every other open(), readers' too, blocks
 * the same way. The break is announced by a realtime signal sent to one dedicated
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
 *
 * <p>The fcntl calls themselves are {@link LeaseFcntl}'s; the signal thread is a
 * {@link LeaseSignalThread}, which reports breaks here. This class keeps the leases, hands breaks
 * to their listeners, and replaces a dead thread.
 */
public final class Leases implements AutoCloseable {
    private static final int ENOLCK = 37;
    private static final int MAX_DEATHS = 3;
    private static final long DEATH_WINDOW_S = 10;

    private static volatile Leases shared;

    /** One lease taken. Known by identity: a descriptor number reused later is another lease. */
    private static final class Lease {
        final FileHandle handle;
        final int fd;
        final Consumer<FileHandle> onBreak;
        final int type;                                       // F_RDLCK or F_WRLCK
        volatile boolean armed;                               // F_SETLEASE succeeded
        final AtomicBoolean breaking = new AtomicBoolean();   // handed to its listener (once)

        Lease(FileHandle handle, int fd, Consumer<FileHandle> onBreak, int type) {
            this.handle = handle;
            this.fd = fd;
            this.onBreak = onBreak;
            this.type = type;
        }
    }

    private final int signal;
    private final Map<Integer, Lease> byFd = new ConcurrentHashMap<>();
    /** Orders pointing leases at a thread (take) against re-pointing them at its replacement. */
    private final Object owners = new Object();
    private final ArrayDeque<Long> deaths = new ArrayDeque<>();     // guarded by owners
    private volatile LeaseSignalThread current;
    private volatile SysException gaveUp;
    private volatile boolean closing;
    /** What the signal thread reports to: kept off this class's public face. */
    private final LeaseSignalThread.Breaks breaks = new LeaseSignalThread.Breaks() {
        @Override public boolean closing() { return closing; }
        @Override public void signalled(int fd) throws SysException { Leases.this.signalled(fd); }
        @Override public void sweep() { Leases.this.sweep(); }
        @Override public void died(LeaseSignalThread thread, Throwable death) { Leases.this.died(thread, death); }
    };

    /** A lease thread of its own (tests); programs use {@link #shared}. */
    Leases() throws SysException {
        this.signal = LeaseSignalThread.leaseSignal();
        current = LeaseSignalThread.start(0, signal, breaks);
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
        LeaseSignalThread l = current;
        return l == null ? 0 : l.tid();
    }

    /** How many times the signal thread was replaced after dying. */
    public int restarts() {
        LeaseSignalThread l = current;
        return l == null ? -1 : l.number();
    }

    /**
     * Takes a read lease on h (opened read-only). Fails with EAGAIN when some process has the file
     * open for writing, EACCES when the caller neither owns the file nor has CAP_LEASE, and with
     * the reason when no thread can listen for breaks. onBreak runs on a thread of its own when
     * another process wants to write.
     */
    public void take(FileHandle h, Consumer<FileHandle> onBreak) throws SysException {
        take(h, onBreak, LeaseFcntl.F_RDLCK);
    }

    /**
     * Takes a write lease on h: every other open of the file, for reading too, and every truncate
     * waits until the holder lets go (what a device writing the file's blocks behind the page cache
     * needs). Fails with EAGAIN when any other descriptor has the file open, for reading or writing,
     * or another lease is held on it (a read lease of this process included), EACCES as {@link #take}.
     * onBreak runs on a thread of its own when another process opens or truncates the file.
     */
    public void takeWrite(FileHandle h, Consumer<FileHandle> onBreak) throws SysException {
        take(h, onBreak, LeaseFcntl.F_WRLCK);
    }

    private void take(FileHandle h, Consumer<FileHandle> onBreak, int type) throws SysException {
        int fd = h.fd();
        listening();
        Lease lease = new Lease(h, fd, onBreak, type);
        try {
            synchronized (owners) {
                byFd.put(fd, lease);
                LeaseSignalThread l = listening();
                LeaseFcntl.take(h, fd, signal, l.tid(), type);
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
    private LeaseSignalThread listening() throws SysException {
        LeaseSignalThread l = watchdog();
        if (l == null || closing) {
            SysException why = gaveUp;
            throw why != null ? why : new SysException("fcntl F_SETLEASE", "lease thread", Errno.EBADF, "the lease thread was closed");
        }
        if (l.tid() == 0) throw new IllegalStateException("lease thread " + l.name() + " has no tid");
        return l;
    }

    /** The live signal thread, after replacing it if it died without starting its replacement; null if none. */
    private LeaseSignalThread watchdog() {
        LeaseSignalThread l = current;
        if (l != null && !l.isAlive() && !closing) {
            log("the lease thread " + l.name() + " is gone; starting another and pointing every lease at it", null);
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
            int rc = LeaseFcntl.unlock(fd);
            if (rc < 0 && -rc != Errno.EAGAIN) {
                // EAGAIN: no lease held. Anything else leaves the kernel to revoke it after lease-break-time.
                log("releasing the lease on " + h.path() + " failed: fcntl F_SETLEASE F_UNLCK: "
                        + Errno.name(-rc) + "; the kernel revokes it after lease-break-time", null);
            }
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * True while h holds the unbroken lease it took (F_GETLEASE: a lease being broken reports its
     * target type, F_UNLCK, or F_RDLCK for a write lease that a reader's open breaks).
     */
    public boolean held(FileHandle h) {
        watchdog();
        try {
            int fd = h.fd();
            Lease l = byFd.get(fd);
            int want = l != null && l.handle == h ? l.type : LeaseFcntl.F_RDLCK;
            return getLease(fd) == want;
        } catch (SysException e) {
            return false;
        }
    }

    private static int getLease(int fd) {
        try {
            return LeaseFcntl.get(fd);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** On the dead signal thread, after it had started: log it and replace it, unless closing. */
    private void died(LeaseSignalThread l, Throwable death) {
        if (closing) return;
        log("the lease thread " + l.name() + " died: " + death + "; starting another and pointing every lease at it", death);
        replace(l, death);
    }

    /** Starts a thread in place of dead, re-points every lease at it, sweeps; or drops every lease if it cannot. */
    private void replace(LeaseSignalThread dead, Throwable cause) {
        LeaseSignalThread next = null;
        synchronized (owners) {
            if (current != dead || closing) return;
            long now = System.nanoTime();
            deaths.addLast(now);
            while (now - deaths.peekFirst() > TimeUnit.SECONDS.toNanos(DEATH_WINDOW_S)) deaths.removeFirst();
            SysException failure = null;
            if (deaths.size() > MAX_DEATHS) {
                failure = new SysException("lease thread", dead.name(), ENOLCK, "it died " + deaths.size() + " times in "
                        + DEATH_WINDOW_S + " s (last: " + cause + "); no lease is taken any more, so files are mapped through "
                        + "the page cache; restart the program");
            } else {
                try {
                    next = LeaseSignalThread.start(dead.number() + 1, signal, breaks);
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
                if (!repoint(lease, next.tid())) dispatch(lease);
            }
            next.sweepSoon();
        }
        next.wake();
    }

    /** F_SETOWN_EX of lease to tid; false if it failed (the caller treats the lease as broken). */
    private boolean repoint(Lease lease, int tid) {
        try {
            int rc = LeaseFcntl.pointAt(lease.fd, tid);
            if (rc == 0) return true;
            log("pointing the lease on " + lease.handle.path() + " at the new lease thread failed: fcntl F_SETOWN_EX: "
                    + Errno.name(-rc) + "; its mappings are taken back", null);
            return false;
        } catch (Throwable t) {
            return false;
        }
    }

    /** On the signal thread: a realtime signal says the lease on fd is breaking. */
    private void signalled(int fd) throws SysException {
        Lease lease;
        synchronized (owners) {
            // Under the lock take() holds while it leases fd: a lease taken again since the
            // signal was queued is seen here, never unlocked as if no one listened for it.
            lease = byFd.get(fd);
            if (lease == null) {
                // A lease no one listens for any more: never leave the writer waiting for lease-break-time.
                LeaseFcntl.unlock(fd);
            }
        }
        if (lease == null) return;
        broken(lease);
    }

    /** On the signal thread: F_GETLEASE on every lease held; one being broken reports another type than it was taken with. */
    private void sweep() {
        for (Lease lease : List.copyOf(byFd.values())) {
            if (lease.armed && !lease.breaking.get() && getLease(lease.fd) != lease.type) broken(lease);
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

    /** One line on stderr (the stack trace too with DMAP_DEBUG set): this runs where no caller can be told. */
    private static void log(String message, Throwable t) {
        System.err.println("dmap: " + message);
        if (t != null && System.getenv("DMAP_DEBUG") != null) t.printStackTrace();
    }

    @Override
    public void close() {
        closing = true;
        LeaseSignalThread l = current;
        if (l != null) l.wake();
    }
}
