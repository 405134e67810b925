package io.directmap.serve;

import io.directmap.device.Binding;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.IntervalNotifier;
import io.directmap.mm.Invalidation;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.sys.FileVersion;
import io.directmap.sys.SocketQueue;
import io.directmap.sys.SysException;
import java.nio.channels.FileChannel;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * One version of one file as the NIC serves it: the vma, the NIC's binding of the whole file (its
 * windows fault through device_map on first use and hold the file's read lease while mapped), and
 * a guard: an interval notifier over the whole file, inserted before the binding's, so the file
 * system tells it first of any change.
 *
 * <p>The interleaving (the guard plays mmu_interval_notifier's role for the responses in flight):
 *
 * <pre>
 *   response (worker thread)                  writer / file system (lease thread)
 *   beginWindow: changed? no, sending++
 *   binding.read(window) into NIC memory      open(O_WRONLY) blocks; lease break
 *   changed? no -> write window to socket     guard.invalidate: changed = true,
 *   write done (bytes in the socket buffer)      waits for sending == 0 (bounded)
 *   endWindow: sending--                      ... then for sendfile'd bytes, the socket's
 *   beginWindow: changed! -> cut the response     send queue to drain (SIOCOUTQ, bounded)
 *                                             binding's windows let go; lease released; open returns
 * </pre>
 *
 * A window that began before the change is sent whole and is of the old version (the writer is still
 * held in open()); no window begins after it. So a response either carries one version or is cut off
 * (the connection closed short of its Content-Length). A window still being sent when the bound
 * runs out is cut too, with a reset, which throws away what the socket still holds.
 *
 * <p>A change that the kernel cannot hold back (a writer that had the file open before the lease,
 * so the mapping is not coherent) is caught after the fact: each window read while not coherent is
 * followed by a statx, and a version that moved cuts the response.
 *
 * <p>With range events (fanotify) the file system tells only the mappings a change overlaps: a
 * write into a window no response has mapped yet goes on at once and never reaches the guard. So
 * every window, once read (and before one is handed to sendfile), is checked with a statx of the request's
 * descriptor, read_retry style: the version still the response's means no change had begun when
 * the read ended (a write stamps mtime/ctime before it copies, multigrain timestamps make a change
 * after a statx look different, a truncate moves the size), so the window is of that version; a
 * version that moved cuts the response ({@link #outdated}). The change does not wait for the
 * response: holding every write of a file while any response of it is in flight is the whole-file
 * lease that range events were made to avoid.
 */
final class ServedFile implements IntervalNotifier.Ops {
    /** What a response is to the guard: something it can cut, and the socket bytes it sent with sendfile. */
    interface Sender {
        /** Closes the connection with a reset (SO_LINGER 0): what the socket still holds is not sent. */
        void reset(String why);

        /** The socket's descriptor, for SIOCOUTQ; -1 when the transport does not give it or it is closed. */
        int socketFd();
    }

    final FileVersion.Version version;
    final Vma vma;
    final Binding binding;
    final FileChannel channel;
    private final IntervalNotifier guard;
    private final long holdNanos;
    private final Map<Sender, Integer> sending = new IdentityHashMap<>();   // guarded by this: windows in flight
    private final Map<Sender, Boolean> sentFromCache = new IdentityHashMap<>(); // guarded by this: sendfile used
    private boolean changed;           // guarded by this
    private int users;                 // guarded by this: responses using it, plus one while cached
    private final Runnable onChange;
    private volatile String changeCause = "";

    /** Binds the NIC to the vma (after the guard is in, so the guard is told first). */
    @FunctionalInterface
    interface Binder {
        Binding bind(Vma vma) throws java.io.IOException;
    }

    ServedFile(FileVersion.Version version, Vma vma, FileChannel channel, long holdNanos, Runnable onChange, Binder binder)
            throws java.io.IOException {
        this.version = version;
        this.vma = vma;
        this.channel = channel;
        this.holdNanos = holdNanos;
        this.onChange = onChange;
        // The vma tells its notifiers in the order they were inserted: the guard before any window.
        this.guard = vma.insertNotifier(0, Long.MAX_VALUE, this);
        try {
            this.binding = binder.bind(vma);
        } catch (java.io.IOException | RuntimeException e) {
            guard.remove();
            throw e;
        }
    }

    long length() { return version.size(); }

    synchronized boolean changed() { return changed; }

    String changeCause() { return changeCause; }

    synchronized boolean acquire() {
        if (changed) return false;
        users++;
        return true;
    }

    /** Gives back one use; true when it was the last and the file should be closed. */
    synchronized boolean release() {
        return --users == 0;
    }

    /**
     * The window a thread is in. A read may itself learn of a change and invalidate on its own thread
     * (the read_retry check finds the lease gone): the guard must not wait for that thread's own
     * window, and the window's bytes may then be of the new version (the read was done again after
     * the writer went on), so they are not sent.
     */
    private static final class Inside {
        final ServedFile file;
        boolean changedHere;

        Inside(ServedFile file) { this.file = file; }
    }

    private static final ThreadLocal<Inside> INSIDE = new ThreadLocal<>();
    private int windows;   // guarded by this: windows in flight, all senders
    private int windowsInGuard;   // guarded by this: of those, the ones whose thread is in invalidate (its read learnt of the change)

    /** A window of s is about to be read and sent: false once the file changed (cut the response). */
    synchronized boolean beginWindow(Sender s) {
        if (changed) return false;
        sending.merge(s, 1, Integer::sum);
        windows++;
        INSIDE.set(new Inside(this));
        return true;
    }

    /**
     * The window's bytes are in NIC memory or the socket (or the response gave up on it); false when
     * the change was learnt on this very thread during the window, so its bytes may be new ones.
     */
    synchronized boolean endWindow(Sender s, boolean sentWithSendfile) {
        if (sending.merge(s, -1, Integer::sum) == 0) sending.remove(s);
        windows--;
        if (sentWithSendfile) sentFromCache.put(s, true);
        Inside in = INSIDE.get();
        INSIDE.remove();
        notifyAll();
        return in == null || !in.changedHere;
    }

    /**
     * Served no more: its mapping was made while another process had the file open for writing, so
     * no lease holds that writer and no change will reach the guard. The next response maps afresh.
     */
    void retire() {
        outdated("open_for_write");
    }

    /**
     * Served no more: the file's version (statx) moved under a response, by a change that reached
     * no mapping of it (range events tell only the windows a change overlaps, and this response had
     * not mapped the changed range yet). Every response of this version is cut at its next window.
     */
    void outdated(String cause) {
        synchronized (this) {
            if (!changed) changeCause = cause;
            changed = true;
            notifyAll();
        }
        onChange.run();
    }

    /** The connection closed: nothing of it can reach the client any more. */
    synchronized void forget(Sender s) {
        sentFromCache.remove(s);
        notifyAll();
    }

    /**
     * Whether [from, to) is mapped now, every byte through the page cache (so it may be sent with
     * sendfile): false when any part is unmapped or direct.
     */
    boolean pageCacheOnly(long from, long to) {
        long covered = from;
        List<DeviceMapping> live = binding.liveMappings();
        for (DeviceMapping m : live) {
            if (m.end() <= covered || m.start() > covered) continue;
            for (Segment seg : m.segments()) {
                if (seg.end() <= covered || seg.start() >= to) continue;
                if (seg.start() > covered || !(seg instanceof Segment.Fallback)) return false;
                covered = seg.end();
                if (covered >= to) return true;
            }
        }
        return covered >= to;
    }

    /**
     * The live mappings that cover [from, to), every byte through the page cache, each holding
     * writers back (coherent): a change to those bytes must first take them back, which tells the
     * guard. null when any part is unmapped, direct or not coherent (then read through the binding).
     * Check {@link #stillLive} after reading: a mapping taken back meanwhile voids what was read.
     */
    List<DeviceMapping> cachedCoherent(long from, long to) {
        long covered = from;
        List<DeviceMapping> used = new ArrayList<>(2);
        for (DeviceMapping m : binding.liveMappings()) {
            if (m.end() <= covered || m.start() > covered) continue;
            if (!m.coherent() || !m.isLive()) return null;
            used.add(m);
            for (Segment seg : m.segments()) {
                if (seg.end() <= covered || seg.start() >= to) continue;
                if (seg.start() > covered || !(seg instanceof Segment.Fallback)) return null;
                covered = seg.end();
                if (covered >= to) return used;
            }
        }
        return covered >= to ? used : null;
    }

    /** Whether every mapping of {@link #cachedCoherent} is still live (none was taken back while the bytes were read). */
    static boolean stillLive(List<DeviceMapping> used) {
        for (DeviceMapping m : used) {
            if (!m.isLive()) return false;
        }
        return true;
    }

    /**
     * The file system takes mappings of the file back: no window begins from now on; the windows
     * being sent are waited for, then the bytes sendfile left in sockets, each for at most the hold
     * bound; whatever is still in flight then is reset. Only then does the change go ahead.
     */
    @Override
    public void invalidate(IntervalNotifier notifier, Invalidation inv) {
        List<Sender> late = new ArrayList<>();
        long deadline = System.nanoTime() + holdNanos;
        Inside here = INSIDE.get();
        boolean own = here != null && here.file == this;
        if (own) here.changedHere = true;
        synchronized (this) {
            if (!changed) changeCause = inv.cause().code();
            changed = true;
            // Windows whose own thread is in here cannot end before this returns: wait for the others only.
            if (own) windowsInGuard++;
            notifyAll();
            try {
                while (windows > windowsInGuard) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) break;
                    waitNanos(left);
                }
                if (windows > windowsInGuard) late.addAll(sending.keySet());
            } finally {
                if (own) windowsInGuard--;
            }
        }
        for (Sender s : late) s.reset("a change to the file waited " + holdNanos / 1_000_000 + " ms for a window being sent");
        drainSendfile(deadline);
        onChange.run();
    }

    /** Waits for the sockets that sendfile wrote pages of this file into to send them; resets those that do not in time. */
    private void drainSendfile(long deadline) {
        List<Sender> senders;
        synchronized (this) {
            senders = new ArrayList<>(sentFromCache.keySet());
            sentFromCache.clear();
        }
        for (Sender s : senders) {
            while (true) {
                int fd = s.socketFd();
                if (fd < 0) break;
                int queued;
                try {
                    queued = SocketQueue.unacknowledged(fd);
                } catch (SysException e) {
                    break;   // closed meanwhile: nothing of it is sent any more
                }
                if (queued == 0) break;
                if (System.nanoTime() > deadline) {
                    s.reset("a change to the file waited " + holdNanos / 1_000_000 + " ms for " + queued
                            + " bytes sent with sendfile to be acknowledged");
                    break;
                }
                pause();
            }
        }
    }

    private void waitNanos(long nanos) {
        try {
            wait(Math.max(1, nanos / 1_000_000));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void pause() {
        try {
            Thread.sleep(1);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Removes the guard, lets go of every window, unmaps; on a thread that is not inside an invalidation. */
    void close() throws java.io.IOException {
        try {
            guard.remove();
            binding.close();
        } finally {
            try {
                vma.close();
            } finally {
                channel.close();
            }
        }
    }

    @Override
    public String toString() {
        return vma.file().path() + " (inode " + version.inode() + ", " + version.size() + " bytes)";
    }
}
