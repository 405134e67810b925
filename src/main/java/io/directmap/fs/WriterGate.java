package io.directmap.fs;

import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import io.directmap.mm.Invalidation;
import io.directmap.mm.Refusal;
import io.directmap.mm.Segment;
import io.directmap.sys.Errno;
import io.directmap.sys.SysException;
import io.directmap.sys.Units;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * Holds other processes' changes back while a file has device mappings, and takes back what they
 * change before they go on. Two ways, chosen per open file:
 *
 * <ul>
 * <li><b>Range events</b> (fanotify pre-content events through {@link ChangeWatch}, where the
 *     policy allows them and the kernel, the file system and root do): every write, truncate,
 *     fallocate or shared writable mmap of another descriptor waits in the kernel while the
 *     mappings that overlap its range are taken back; the rest stay mapped. A change the watch
 *     let go on is <i>pending</i> until no descriptor is open for writing any more (the last
 *     FAN_CLOSE_WRITE, checked with a read lease taken and given back): until then a mapping of a
 *     range it overlaps reads that range through the page cache and is not coherent, so a device
 *     never maps blocks that a write in progress is about to leave stale.</li>
 * <li><b>A read lease</b> on the descriptor (where range events are off or do not work here): the
 *     kernel stops the other process in open() or truncate() without saying what it will change,
 *     so every mapping of the file is taken back.</li>
 * </ul>
 *
 * The interleavings that matter, as in mm/mmu_notifier.c: a decision reads {@code seq} first and
 * is made again if it moved; an event bumps {@code seq} and records its pending range under the
 * file's coherence lock before it looks for mappings to take back, so a decision either sees the
 * pending range or is found by the event.
 *
 * <pre>
 *   device_map                          range event (another process's write of [a, b))
 *   seq0 = seq                          .
 *   hold(): no pending over range       .
 *   plan (FIEMAP, cachestat)            lock; seq++; pending += [a, b); unlock
 *   lock; seq != seq0: plan again  &lt;-  take back mappings over [a, b); ALLOW
 * </pre>
 */
final class WriterGate {
    private final MappingTracker tracker;
    private final Invalidator invalidator;
    /** The file system's change watch, opened on first use; null where range events are off. */
    private final Supplier<ChangeWatch> changes;
    /** Open files that hear of changes by range events (the rest use leases); state guarded by file.coherence. */
    private final Map<OpenFile, Watched> watched = new ConcurrentHashMap<>();
    /** Open files whose file system or kernel refused range events: they keep a lease. */
    private final Map<OpenFile, String> leaseOnly = new ConcurrentHashMap<>();

    /** One open file's watch and the changes it let go on that are not known to be finished. */
    private static final class Watched {
        ChangeWatch.Watch watch;
        final List<Pending> pending = new ArrayList<>();
        int listenersRunning;
        /** Descriptors open for writing that the watch saw open and not yet close (opening minus writerClosed). */
        int writers;
        /** A writer may be open that the watch did not see open (it began while one was): only the kernel can say. */
        boolean writersUnknown;
        boolean closeWhenIdle;
    }

    /** A change let go on: [start, end) may be changing until every writer has closed. */
    private record Pending(long start, long end, String what) {}

    /**
     * What a decision must respect: the ranges whose direct segments are refused (with why), and
     * whether the mapping can claim coherence (no other process can change its bytes unseen).
     */
    record Hold(List<Refused> refused, boolean coherent) {
        static final Hold FREE = new Hold(List.of(), true);

        /** Direct segments that overlap a refused range become fallbacks for its refusal, their grants given back. */
        List<Segment> apply(List<Segment> segments, RangePlanner planner) {
            if (refused.isEmpty()) return segments;
            List<Segment> out = new ArrayList<>(segments.size());
            for (Segment s : segments) {
                Refused r = s instanceof Segment.Direct ? overlapping(s.start(), s.end()) : null;
                if (r == null) {
                    out.add(s);
                } else {
                    planner.releaseGrants(List.of(s));
                    out.add(new Segment.Fallback(s.start(), s.end(), r.refusal()));
                }
            }
            return Segments.merge(out);
        }

        private Refused overlapping(long start, long end) {
            for (Refused r : refused) if (r.start() < end && start < r.end()) return r;
            return null;
        }
    }

    /** Direct mapping refused over [start, end) for refusal. */
    record Refused(long start, long end, Refusal refusal) {}

    WriterGate(MappingTracker tracker, Invalidator invalidator, Supplier<ChangeWatch> changes) {
        this.tracker = tracker;
        this.invalidator = invalidator;
        this.changes = changes;
    }

    /**
     * Holds other processes' writes back for as long as mappings of file live, and says what a
     * decision over [start, end) must refuse: with range events, the direct segments over changes
     * still in progress; with a lease that cannot be taken (someone has the file open for writing,
     * or the caller may not), all of them.
     */
    Hold hold(OpenFile file, long start, long end) {
        ChangeWatch cw = rangeEvents(file);
        if (cw != null) {
            Optional<Hold> h = holdByEvents(cw, file, start, end);
            if (h.isPresent()) return h.get();
        } else if (watched.containsKey(file)) {
            stopWatching(file);   // the watch gave up (its listeners took everything back): a lease from now on
        }
        return holdWriters(file).map(r -> new Hold(List.of(new Refused(0, Long.MAX_VALUE, r)), false)).orElse(Hold.FREE);
    }

    /**
     * The change watch when file should hear of changes by range events; null for the lease. A file
     * opened for device writes always takes the write lease: while a device writes its blocks behind
     * the page cache, no one else may have the file open at all, readers included (a reader would
     * cache the old bytes), and range events hold back only writers.
     */
    private ChangeWatch rangeEvents(OpenFile file) {
        if (changes == null || file.writable() || leaseOnly.containsKey(file)) return null;
        ChangeWatch cw = changes.get();
        return cw != null && cw.available() ? cw : null;
    }

    /** Watches file (once) and refuses what pending changes overlap; empty when this file must use a lease. */
    private Optional<Hold> holdByEvents(ChangeWatch cw, OpenFile file, long start, long end) {
        synchronized (file.coherence) {
            Watched w = watched.computeIfAbsent(file, f -> new Watched());
            if (w.watch == null) {
                ChangeWatch.Watched answer;
                try {
                    answer = cw.watch(file, new Heard(file));
                } catch (IOException e) {
                    // The kernel refused the mark (too many marks): this file keeps a lease.
                    watched.remove(file);
                    leaseOnly.put(file, e.getMessage());
                    return Optional.empty();
                }
                switch (answer) {
                    case ChangeWatch.Watch ok -> {
                        w.watch = ok;
                        // A writer that opened after the watch's own check and wrote before its listener was
                        // registered went unasked: while any writer is open, the whole file may be changing.
                        if (openForWriting(file)) {
                            w.writersUnknown = true;
                            addPending(w, new Pending(0, Long.MAX_VALUE, "a writer opened while the watch of " + file.path()
                                    + " began (its first writes may have gone unseen)"));
                        }
                    }
                    case ChangeWatch.Refused no when no.reason() == ChangeWatch.Reason.OPEN_FOR_WRITING -> {
                        // A descriptor opened for writing before the mark makes no events: as when no lease can be taken.
                        watched.remove(file);
                        return Optional.of(new Hold(List.of(new Refused(0, Long.MAX_VALUE,
                                new Refusal(FsReason.OPEN_FOR_WRITE, no.detail()))), false));
                    }
                    case ChangeWatch.Refused no -> {
                        watched.remove(file);
                        leaseOnly.put(file, no.toString());
                        return Optional.empty();
                    }
                }
            }
            if (w.pending.isEmpty()) return Optional.of(Hold.FREE);
            List<Refused> refused = new ArrayList<>();
            for (Pending p : w.pending) {
                if (p.start() < end && start < p.end()) {
                    refused.add(new Refused(p.start(), p.end(), new Refusal(FsReason.BEING_CHANGED, p.what()
                            + "; it may still be changing " + range(Math.max(p.start(), start), Math.min(p.end(), end))
                            + " (a writer still has the file open)")));
                }
            }
            if (refused.isEmpty()) return Optional.of(Hold.FREE);
            if (noWriters(file, w)) {
                // Every writer has closed (its FAN_CLOSE_WRITE may still be on its way): every change is done.
                w.pending.clear();
                return Optional.of(Hold.FREE);
            }
            return Optional.of(new Hold(refused, false));
        }
    }

    /**
     * Whether every writer of file has closed: the watch saw each open for writing and each close
     * (FAN_CLOSE_WRITE comes at the last close, so a shared writable mapping counts until munmap),
     * or else the kernel says none is open (a read lease can be taken), which also heals a count
     * that an open failing after its permission event left high. The count alone ignores this
     * process's own quiet writable descriptors, which raise no events and would keep a lease away.
     * Called holding file.coherence.
     */
    private static boolean noWriters(OpenFile file, Watched w) {
        if (w.writers == 0 && !w.writersUnknown) return true;
        if (openForWriting(file)) return false;
        w.writers = 0;
        w.writersUnknown = false;
        return true;
    }

    /** Whether some descriptor (any process's, ours included) has file open for writing: a read lease cannot be taken then. */
    private static boolean openForWriting(OpenFile file) {
        try {
            return io.directmap.sys.OpenWriters.any(file.handle());
        } catch (SysException e) {
            return true;   // cannot tell: the change may still be running
        }
    }

    /** What one open file's watch hears: other descriptors' opens, changes and closes of the file. */
    private final class Heard implements ChangeWatch.Listener {
        private final OpenFile file;

        Heard(OpenFile file) {
            this.file = file;
        }

        @Override
        public ChangeWatch.Verdict opening(ChangeWatch.Task t, io.directmap.sys.TaskSyscall.Access.Open a) {
            if (a.forWrite()) {
                synchronized (file.coherence) {
                    Watched w = watched.get(file);
                    if (w != null) w.writers++;
                }
            }
            // An open for writing changes nothing yet: its writes will each say their range.
            if (!a.truncates()) return ChangeWatch.Verdict.ALLOW;
            return changed(0, Long.MAX_VALUE, Invalidation.Cause.TRUNCATE, t + " opens it with O_TRUNC");
        }

        @Override
        public ChangeWatch.Verdict changing(ChangeWatch.Task t, ChangeWatch.Change c) {
            long start = c.offset(), end = c.end();
            Invalidation.Cause cause = switch (c.kind()) {
                case WRITE -> Invalidation.Cause.WRITE;
                case TRUNCATE -> Invalidation.Cause.TRUNCATE;
                case FALLOCATE, PUNCH_HOLE -> Invalidation.Cause.FALLOCATE;
                case MMAP_WRITE, UNKNOWN -> Invalidation.Cause.UNSEEN_WRITE;
            };
            String who = t.toString();
            String what = switch (c.kind()) {
                case WRITE -> who + " writes " + Units.range(start, end);
                case TRUNCATE -> who + " truncates it to " + start + " bytes";
                case FALLOCATE -> who + " allocates or zeroes " + Units.range(start, end);
                case PUNCH_HOLE -> who + " punches a hole in " + Units.range(start, end);
                case MMAP_WRITE -> who + " maps " + Units.range(start, end) + " shared and writable";
                case UNKNOWN -> who + " changes " + range(start, end) + " in a way not told apart (" + c.detail() + ")";
            };
            return changed(start, end, cause, what);
        }

        @Override
        public void writerClosed(ChangeWatch.Task t) {
            synchronized (file.coherence) {
                Watched w = watched.get(file);
                if (w == null) return;
                w.writers = Math.max(0, w.writers - 1);
                if (!w.pending.isEmpty() && noWriters(file, w)) w.pending.clear();
            }
        }

        /** A change of [start, end) is about to happen: record it, take back what it overlaps, then let it go. */
        private ChangeWatch.Verdict changed(long start, long end, Invalidation.Cause cause, String what) {
            if (Faults.fire(FaultPoint.SKIP_RANGE_INVALIDATE)) {
                // The fault: the change goes on and nothing is taken back or held, as a file system that
                // forgot one range. The coherence torture must then find stale blocks.
                return ChangeWatch.Verdict.ALLOW;
            }
            Invalidation inv = Invalidation.of(start, end, cause, what, true);
            Watched w;
            synchronized (file.coherence) {
                file.coherence.seq++;
                w = watched.get(file);
                if (w != null) {
                    addPending(w, new Pending(start, end, what));
                    w.listenersRunning++;
                }
            }
            try {
                // Nothing mapped there (most writes of a writer after its first): nothing to tell or to count.
                List<FileMapping> overlapping = mappingsOf(file, start, end);
                if (!overlapping.isEmpty()) invalidator.invalidateLogging(file.path(), overlapping, inv);
            } finally {
                if (w != null) listenerDone(file, w);
            }
            return ChangeWatch.Verdict.ALLOW;
        }
    }

    /** At most this many pending ranges per file; past it they become one that covers them all. */
    static final int MAX_PENDING = 256;

    /** Adds p, joined with pending ranges it overlaps or touches (a sequential writer stays one range). */
    private static void addPending(Watched w, Pending p) {
        long s = p.start(), e = p.end();
        String what = p.what();
        for (var it = w.pending.iterator(); it.hasNext(); ) {
            Pending q = it.next();
            if (q.start() <= e && s <= q.end()) {
                s = Math.min(s, q.start());
                e = Math.max(e, q.end());
                what = q.what();
                it.remove();
            }
        }
        w.pending.add(new Pending(s, e, what));
        if (w.pending.size() > MAX_PENDING) {
            long lo = Long.MAX_VALUE, hi = 0;
            for (Pending q : w.pending) {
                lo = Math.min(lo, q.start());
                hi = Math.max(hi, q.end());
            }
            w.pending.clear();
            w.pending.add(new Pending(lo, hi, "more than " + MAX_PENDING + " changes, the last: " + p.what()));
        }
    }

    private static String range(long start, long end) {
        return end == Long.MAX_VALUE ? "[" + start + ", EOF)" : Units.range(start, end);
    }

    /**
     * The last check before bytes of a mapping said to be coherent are delivered. With a lease: does
     * its file still hold it (F_GETLEASE)? A lease being broken already reports F_UNLCK, so a writer
     * that is waiting, or was let go by the kernel after lease-break-time, is seen here even if its
     * break has not reached the importer yet. Then every mapping through that lease is taken back now
     * (the break's own handler finds nothing left to do) and the read is done again. With range
     * events: is the watch still live (its group may have failed)? If not, the same.
     */
    boolean leaseStillHeld(FileMapping m) {
        OpenFile file = m.file();
        boolean byEvents = watched.containsKey(file);
        boolean held;
        if (byEvents) {
            ChangeWatch cw = changes.get();
            held = cw != null && cw.available();
        } else {
            held = leases().held(file.handle());
        }
        if (held) return true;
        if (!m.isLive()) return false;
        invalidator.invalidateLogging(file.path(), mappingsOf(file, 0, Long.MAX_VALUE), Invalidation.of(0, Long.MAX_VALUE,
                Invalidation.Cause.WRITE_OPEN, byEvents
                        ? "the change watch stopped (fanotify failed); what was read meanwhile is read again, under a lease"
                        : "the read lease is no longer held (fcntl F_GETLEASE): another process opened it for writing or truncated it; "
                        + "what was read meanwhile is read again", false));
        return false;
    }

    /** The live mappings made through this open file that overlap [start, end). */
    private List<FileMapping> mappingsOf(OpenFile file, long start, long end) {
        return tracker.overlapping(file, start, end).stream().filter(x -> x.file() == file).toList();
    }

    /**
     * Holds other processes' writes back with a read lease on file's descriptor. When one cannot be
     * taken (someone has the file open for writing, or the caller may not), the refusal says so
     * and the range is not mapped directly.
     */
    private Optional<Refusal> holdWriters(OpenFile file) {
        // Lease calls happen under the file's lock, so the flag and the kernel's lease never disagree.
        synchronized (file.coherence) {
            if (file.coherence.leaseHeld) return Optional.empty();
            if (file.coherence.breaking) {
                return Optional.of(new Refusal(FsReason.OPEN_FOR_WRITE, file.path()
                        + " is being opened for writing elsewhere; the devices are letting go"));
            }
            try {
                // A file opened for device writes holds a write lease: every other open waits, readers too.
                if (file.writable()) leases().takeWrite(file.handle(), h -> leaseBroken(file));
                else leases().take(file.handle(), h -> leaseBroken(file));
            } catch (SysException e) {
                if (e.errno() == Errno.EAGAIN && file.writable()) {
                    return Optional.of(new Refusal(FsReason.OPEN_ELSEWHERE, file.path()
                            + " is open through another descriptor, or has another lease on it (fuser -v, /proc/locks); no write lease can be taken"));
                }
                if (e.errno() == Errno.EAGAIN) {
                    return Optional.of(new Refusal(FsReason.OPEN_FOR_WRITE, file.path()
                            + " is open for writing elsewhere (fuser -v shows by whom); no lease can be taken"));
                }
                return Optional.of(new Refusal(FsReason.NO_LEASE, "read lease on " + file.path() + ": " + e.shortReason()));
            }
            file.coherence.leaseHeld = true;
            return Optional.empty();
        }
    }

    /**
     * Between two pinned stretches of a write: while the file's lease is being broken (the kernel
     * already reports it broken, F_GETLEASE, or the lease thread is taking the mappings back), wait
     * until the break is through and the other process went on, at most BREAK_WAIT. Otherwise a
     * write that pins its next stretch as soon as it let go of the last keeps one step ahead of the
     * invalidation, and the other process waits for the whole write (or, past lease-break-time, the
     * kernel lets it go while the device still writes). A lease lost without a break (no one
     * answered it) is not waited for: the write's verify takes its mappings back.
     */
    void awaitBreak(OpenFile file) {
        long deadline = System.nanoTime() + BREAK_WAIT_NANOS;
        while (System.nanoTime() < deadline) {
            boolean breaking;
            synchronized (file.coherence) {
                breaking = file.coherence.breaking || (file.coherence.leaseHeld && !leases().held(file.handle()));
            }
            if (!breaking) return;
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** The longest a write waits for a lease break to go through (the signal reaching the lease thread, the devices letting go). */
    private static final long BREAK_WAIT_NANOS = 2_000_000_000L;

    /** On the lease thread: another process is waiting in open() or truncate() until the devices let go. */
    private void leaseBroken(OpenFile file) {
        synchronized (file.coherence) {
            file.coherence.seq++;
            file.coherence.leaseHeld = false;
            file.coherence.breaking = true;
        }
        try {
            invalidator.invalidateLogging(file.path(), mappingsOf(file, 0, Long.MAX_VALUE),
                    Invalidation.of(0, Long.MAX_VALUE, Invalidation.Cause.WRITE_OPEN,
                            "another process opened it for writing or truncated it (lease break); it waited for the devices", true));
        } finally {
            synchronized (file.coherence) {
                leases().release(file.handle());
                file.coherence.breaking = false;
            }
        }
    }

    private static io.directmap.sys.Leases leases() {
        try {
            return io.directmap.sys.Leases.shared();
        } catch (SysException e) {
            throw new IllegalStateException("the lease thread did not start: " + e.getMessage(), e);
        }
    }

    /** How other processes' changes to file are held back now, in words (for the torture's report, dmap watch). */
    String heardBy(OpenFile file) {
        if (file != null && watched.containsKey(file)) return "range events (fanotify)";
        if (file != null && file.writable()) return "a write lease (whole file): the file is open for device writes";
        String why = file == null ? null : leaseOnly.get(file);
        if (why != null) return "a read lease (whole file): " + why;
        if (changes == null) return "a read lease (whole file): range events are switched off";
        ChangeWatch cw = changes.get();
        if (cw == null || !cw.available()) return "a read lease (whole file): " + (cw == null ? "no change watch" : cw.why());
        return "range events (fanotify)";
    }

    /** Forgets file's watch (closing it on a thread of its own); its pending changes go with it. */
    private void stopWatching(OpenFile file) {
        Watched w;
        synchronized (file.coherence) {
            w = watched.remove(file);
            if (w == null) return;
            file.coherence.seq++;
        }
        if (w.watch != null) closeLater(w.watch);
    }

    /** Closes a watch on a thread of its own: the caller may be one of its listeners. */
    private static void closeLater(ChangeWatch.Watch watch) {
        Thread.ofVirtual().name("dmap-unwatch").start(() -> {
            try {
                watch.close();
            } catch (SysException e) {
                System.err.println("dmap: closing " + watch + " failed: " + e.getMessage());
            }
        });
    }

    /** A mapping of file was released: when it was the last, writers go freely again. */
    void mappingGone(OpenFile file) {
        ChangeWatch.Watch close = null;
        synchronized (file.coherence) {
            if (--file.coherence.liveMappings != 0) return;
            if (file.coherence.leaseHeld) {
                // Nothing mapped through this file any more: let writers go freely.
                leases().release(file.handle());
                file.coherence.leaseHeld = false;
                file.coherence.seq++;
            }
            leaseOnly.remove(file);
            Watched w = watched.get(file);
            if (w != null) {
                if (w.listenersRunning > 0) {
                    // On (or racing) the watch's own listener, which is taking the last mapping back:
                    // the watch is closed when it returns, never from inside it.
                    w.closeWhenIdle = true;
                } else {
                    watched.remove(file);
                    close = w.watch;
                    file.coherence.seq++;
                }
            }
        }
        if (close != null) closeNow(close);
    }

    private static void closeNow(ChangeWatch.Watch watch) {
        try {
            watch.close();
        } catch (SysException e) {
            System.err.println("dmap: closing " + watch + " failed: " + e.getMessage());
        }
    }

    /** A listener of file's watch returned: the watch closes now if the last mapping went meanwhile. */
    private void listenerDone(OpenFile file, Watched w) {
        ChangeWatch.Watch close = null;
        synchronized (file.coherence) {
            if (--w.listenersRunning == 0 && w.closeWhenIdle) {
                w.closeWhenIdle = false;
                if (file.coherence.liveMappings == 0 && watched.get(file) == w) {
                    watched.remove(file);
                    close = w.watch;
                    file.coherence.seq++;
                }
            }
        }
        // Closed on a thread of its own: the listener that is returning is one of the watch's.
        if (close != null) closeLater(close);
    }
}
