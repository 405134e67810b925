package io.directmap.fs;

import io.directmap.block.BlockChange;
import io.directmap.block.BlockDevice;
import io.directmap.block.PeerMappings;
import io.directmap.dmabuf.DmaBuf;
import io.directmap.dmabuf.DmaBufOps;
import io.directmap.dmabuf.Move;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Refusal;
import io.directmap.mm.Segment;
import io.directmap.sys.TaskSyscall;
import io.directmap.sys.Units;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One pin: the exporter's side of a {@link DmaBuf} made by device_map with DEVICE_MAP_FLAG_PIN. It
 * owns a descriptor of its own on the file's inode (so the vma and the caller's descriptor may go),
 * the direct mapping it decided, and a mark of the change watch through which it answers every
 * open for writing and every change of the range by another descriptor.
 *
 * <p>While the buffer is pinned (a pinning reference or a pinned attachment lives), an open for
 * writing (or with O_TRUNC) is refused with ETXTBSY, as the kernel refuses a swap file's writers,
 * and so is a change of the range (write, truncate below its end, hole punch, fallocate, writable
 * mmap, or a change the watch cannot place, which may be anywhere). Not for lease-break-time: a
 * fanotify permission event waits for its answer for as long as it takes. When only dynamic
 * attachments are left, a change of the range is let through after each of them let go
 * (move_notify), and the next map decides again where the bytes are.
 *
 * <p>The kernel drops a fanotify group with the process that made it, so a pin held by a process
 * that is killed (kill -9) leaves nothing denied.
 */
final class PinGuard implements ChangeWatch.Listener, DmaBufOps, PeerMappings.Owner {
    /** ETXTBSY (asm-generic/errno-base.h): what a writer of a swap file or a running executable gets. */
    static final int ETXTBSY = 26;

    private final FsLayer fs;
    private final OpenFile file;
    private final MapRequest request;
    private final long createdMillis = System.currentTimeMillis();
    private final AtomicLong refused = new AtomicLong();
    private volatile String lastRefused = "";
    /**
     * The buffer, weakly: the change watch and the layer's list of pins keep this guard, and a
     * strong reference here would keep a forgotten buffer reachable for ever (its leak report and
     * release could never come). Set once, before the mark is added.
     */
    private volatile java.lang.ref.WeakReference<DmaBuf> bufRef = new java.lang.ref.WeakReference<>(null);
    private volatile String description = "";
    /** The blocks were taken back (detach, shrink, the layer closed): nothing is held, writers are let through. */
    private volatile boolean revoked;
    private ChangeWatch.Watch watch;          // guarded by this: the inode's mark, through which it answers
    private FileMapping mapping;              // guarded by this: what the buffer holds now; null after a move
    private boolean released;                 // guarded by this
    /**
     * Changes being let through (or asked about) while nothing pinned, by thread: the access the
     * thread was blocked in. Recorded before the dynamic importers are asked, so a pin that comes
     * after the move waits for the change to end ({@link #pinRefusal}).
     */
    private final java.util.concurrent.ConcurrentHashMap<Integer, TaskSyscall.Access> letThrough = new java.util.concurrent.ConcurrentHashMap<>();
    /** Processes whose shared writable mmap of the file was let through while nothing pinned. */
    private final java.util.concurrent.ConcurrentHashMap<Integer, String> sharedWriters = new java.util.concurrent.ConcurrentHashMap<>();
    /** How long a pin after a move waits for a change let through to end before it is refused. */
    static final long SETTLE_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(5);

    private PinGuard(FsLayer fs, OpenFile file, MapRequest request) {
        this.fs = fs;
        this.file = file;
        this.request = request;
    }

    /**
     * device_map with PIN for [request.start, request.end) of file: the whole range direct, held
     * until the buffer's last release, or a refusal that leaves nothing behind.
     */
    static PinOutcome pin(FsLayer fs, ChangeWatch changes, OpenFile caller, MapRequest request) throws IOException {
        Optional<Refusal> no = PinCheck.refusal(caller);
        if (no.isPresent()) return new PinOutcome.Refused(no.get());
        if (!changes.available()) {
            return new PinOutcome.Refused(new Refusal(FsReason.PIN_UNWATCHED, changes.why()));
        }
        // A descriptor of its own on the same inode (checked by statx): the caller's may close.
        OpenFile own = OpenFile.open(caller.path(), caller.stat());
        PinGuard g = new PinGuard(fs, own, request);
        DmaBuf buf = DmaBuf.export(own.path() + " " + Units.range(request.start(), request.end()) + " pinned for "
                + request.importer().name(), request.start(), request.end(), g);
        g.bufRef = new java.lang.ref.WeakReference<>(buf);
        g.description = buf.description();
        try {
            Optional<Refusal> refused = g.hold(changes);
            if (refused.isEmpty()) {
                Decision d = g.decide();
                if (d.mapping() != null) {
                    fs.pinMade(g);
                    return new PinOutcome.Pinned(buf, d.mapping().segments());
                }
                refused = Optional.of(d.refusal());
            }
            buf.release();       // releases the mark and the descriptor
            return new PinOutcome.Refused(refused.get());
        } catch (IOException | RuntimeException | Error e) {
            try {
                buf.release();
            } catch (RuntimeException | Error r) {
                e.addSuppressed(r);
            }
            throw e;
        }
    }

    /** What {@link #decide} came to: the mapping, or (mapping null) why the range is not all direct. */
    private record Decision(FileMapping mapping, Refusal refusal) {}

    /** Marks the inode; refused when someone has it open for writing already (their writes would go unseen). */
    private Optional<Refusal> hold(ChangeWatch changes) throws IOException {
        return switch (changes.watch(file, this)) {
            case ChangeWatch.Refused r -> Optional.of(new Refusal(
                    r.reason() == ChangeWatch.Reason.OPEN_FOR_WRITING ? FsReason.OPEN_FOR_WRITE : FsReason.PIN_UNWATCHED,
                    r.reason().summary() + ": " + r.detail()));
            case ChangeWatch.Watch w -> {
                synchronized (this) {
                    watch = w;
                }
                yield Optional.empty();
            }
        };
    }

    /**
     * Decides the mapping for the whole range, direct or nothing (then the decision says why); with
     * the mark on, nothing can change the range while it is decided.
     */
    private Decision decide() throws IOException {
        long t0 = System.nanoTime();
        EnumSet<MapFlag> flags = EnumSet.noneOf(MapFlag.class);
        flags.addAll(request.flags());
        flags.remove(MapFlag.PIN);
        MapRequest plain = new MapRequest(request.importer(), request.start(), request.end(), flags, MapMode.ALL_OR_NOTHING);
        while (true) {
            if (io.directmap.fault.Faults.fire(io.directmap.fault.FaultPoint.PIN_PLAN_ERROR)) {
                throw new io.directmap.sys.SysException("ioctl(FS_IOC_FIEMAP)", file.path().toString(), io.directmap.sys.Errno.EIO,
                        "fault point pin_plan_error: the pin's range could not be planned");
            }
            List<Extent> placement = new ArrayList<>();
            List<Segment> segments = fs.planner().plan(file, plain, 0, placement);
            Segment.Fallback first = null;
            long refusedBytes = 0;
            for (Segment s : segments) {
                if (s instanceof Segment.Fallback f) {
                    refusedBytes += f.length();
                    if (first == null) first = f;
                }
            }
            if (first != null) {
                fs.planner().releaseGrants(segments);
                return new Decision(null, new Refusal(FsReason.PIN_NOT_DIRECT, Units.bytes(refusedBytes) + " of " + Units.range(request.start(), request.end())
                        + " is not direct, first " + Units.range(first.start(), first.end()) + ": " + first.refusal().reason().code()
                        + " by the " + first.refusal().reason().refuser().label().replace('_', ' ') + ", " + first.refusal().reason().summary()
                        + (first.refusal().detail().isEmpty() ? "" : " (" + first.refusal().detail() + ")")));
            }
            FileMapping m = new FileMapping(fs.nextId(), file, request, segments, System.nanoTime() - t0, inv -> revoke(inv), true, placement);
            List<PeerMappings.Entry> peers = new ArrayList<>();
            boolean goingAway = false;
            for (Segment s : segments) {
                Segment.Direct d = (Segment.Direct) s;
                peers.add(fs.blocks().track(Segments.grant(d), this));
                goingAway |= Segments.device(d).goingAway().isPresent();
            }
            m.peerEntries(peers);
            if (goingAway) {
                // A device began going away after it granted: decide again (it now refuses).
                unmap(m);
                continue;
            }
            synchronized (this) {
                mapping = m;
            }
            return new Decision(m, null);
        }
    }

    /** Gives back what a mapping of this pin holds: its peer entries and block-device grants. */
    private void unmap(FileMapping m) {
        if (!m.retire()) return;
        for (PeerMappings.Entry e : m.peerEntries()) fs.blocks().peers().unregister(e);
        fs.planner().releaseGrants(m.segments());
    }

    // ---- the change watch: every open and change of the inode by another descriptor

    /** The buffer, or null once it was found unreachable (its cleaner releases this pin). */
    private DmaBuf buf() {
        return bufRef.get();
    }

    @Override
    public ChangeWatch.Verdict opening(ChangeWatch.Task t, TaskSyscall.Access.Open a) {
        DmaBuf buf = buf();
        if (buf == null || revoked) return ChangeWatch.Verdict.ALLOW;
        // An open with O_TRUNC truncates inside open(): no access event follows (kernel fact 13).
        if (a.truncates()) return change(buf, t, ChangeWatch.Change.Kind.TRUNCATE, 0, Long.MAX_VALUE, "open with O_TRUNC");
        if (!a.forWrite() || !buf.pinned()) return ChangeWatch.Verdict.ALLOW;
        return deny(t, "open for writing");
    }

    @Override
    public ChangeWatch.Verdict changing(ChangeWatch.Task t, ChangeWatch.Change c) {
        DmaBuf buf = buf();
        if (buf == null || revoked) return ChangeWatch.Verdict.ALLOW;
        boolean anywhere = c.kind() == ChangeWatch.Change.Kind.UNKNOWN;
        long s = anywhere ? 0 : c.offset(), e = anywhere ? Long.MAX_VALUE : Math.max(c.end(), s + 1);
        return change(buf, t, c.kind(), s, e, c.detail());
    }

    /** A change of [s, e): refused while pinned, else let through once dynamic importers let go. */
    private ChangeWatch.Verdict change(DmaBuf buf, ChangeWatch.Task t, ChangeWatch.Change.Kind kind, long s, long e, String detail) {
        if (!(s < buf.end() && buf.start() < e)) return ChangeWatch.Verdict.ALLOW;
        String what = kind.name().toLowerCase(java.util.Locale.ROOT).replace('_', ' ');
        Invalidation why = Invalidation.of(Math.max(s, buf.start()), Math.min(e, buf.end()), Invalidation.Cause.CHANGED,
                what + " by " + who(t) + (detail.isEmpty() ? "" : " (" + detail + ")"), true);
        // Recorded before asking: a pin taken once the dynamic importers let go must see it.
        TaskSyscall.Access access = TaskSyscall.of(t.tid(), dev(), file.stat().inode());
        letThrough.put(t.tid(), access);
        if (kind == ChangeWatch.Change.Kind.MMAP_WRITE) sharedWriters.put(t.pid(), who(t));
        return switch (buf.moveNotify(why)) {
            case Move.Held h -> {
                letThrough.remove(t.tid(), access);
                if (kind == ChangeWatch.Change.Kind.MMAP_WRITE) sharedWriters.remove(t.pid(), who(t));
                yield deny(t, what + " of " + (e == Long.MAX_VALUE ? "[" + Units.bytes(s) + ", EOF)" : Units.range(s, e))
                        + ", held by " + String.join(", ", h.holders()));
            }
            case Move.Moved m -> {
                moved();
                yield ChangeWatch.Verdict.ALLOW;
            }
        };
    }

    @Override
    public void writerClosed(ChangeWatch.Task t) { }

    private long dev() {
        return TaskSyscall.dev(file.stat().devMajor(), file.stat().devMinor());
    }

    // ---- pinned again after a move: what was let through must be over

    /**
     * A pin of a buffer only dynamic importers held: each change let through meanwhile must have
     * ended (its thread left the call it was blocked in; waited for up to {@link #SETTLE_NANOS}),
     * else the pin could decide the old placement while the change moves it; and no process may
     * still map the file shared from a writable mmap let through meanwhile, since its stores raise
     * no event.
     */
    @Override
    public Optional<Refusal> pinRefusal() {
        long deadline = System.nanoTime() + SETTLE_NANOS;
        int self = currentTid();
        for (var e : letThrough.entrySet()) {
            int tid = e.getKey();
            while (tid != self && stillIn(tid, e.getValue())) {
                if (System.nanoTime() - deadline > 0) {
                    return Optional.of(new Refusal(FsReason.PIN_CHANGING, "thread " + tid + " is still in " + e.getValue()
                            + " on " + file.path() + " after " + java.util.concurrent.TimeUnit.NANOSECONDS.toSeconds(SETTLE_NANOS)
                            + " s; pin again once it is done"));
                }
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
            }
            letThrough.remove(tid, e.getValue());
        }
        for (var e : sharedWriters.entrySet()) {
            Optional<String> m = sharedMapping(Path.of("/proc", Integer.toString(e.getKey()), "maps"), file.stat().devMajor(),
                    file.stat().devMinor(), file.stat().inode());
            if (m.isPresent()) {
                return Optional.of(new Refusal(FsReason.PIN_SHARED_WRITER, e.getValue() + " maps " + file.path() + " shared ("
                        + m.get() + "); munmap it or end the process, then pin again"));
            }
            sharedWriters.remove(e.getKey(), e.getValue());
        }
        return Optional.empty();
    }

    /** Whether thread tid is still in the call it was blocked in (or running, which may be it). */
    private boolean stillIn(int tid, TaskSyscall.Access then) {
        TaskSyscall.Access now = TaskSyscall.of(tid, dev(), file.stat().inode());
        if (now instanceof TaskSyscall.Access.Unknown u) {
            if (u.why().contains("is gone")) return false;
            if (u.why().contains("running")) return true;
        }
        return now.equals(then);
    }

    /** This thread's id (the kernel's tid), from /proc/thread-self; -1 when it cannot be read. */
    private static int currentTid() {
        try {
            return Integer.parseInt(java.nio.file.Files.readSymbolicLink(Path.of("/proc/thread-self")).getFileName().toString());
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /**
     * The first shared mapping of inode on device major:minor in a /proc/PID/maps file, as its
     * line; empty when there is none or the process is gone.
     */
    static Optional<String> sharedMapping(Path maps, int major, int minor, long inode) {
        List<String> lines;
        try {
            lines = java.nio.file.Files.readAllLines(maps);
        } catch (IOException e) {
            return Optional.empty();      // the process is gone: its mappings went with it
        }
        return sharedMapping(lines, major, minor, inode);
    }

    /** {@link #sharedMapping(Path, int, int, long)} on lines already read: "start-end perms offset MM:mm inode path". */
    static Optional<String> sharedMapping(List<String> lines, int major, int minor, long inode) {
        for (String line : lines) {
            String[] f = line.trim().split("\\s+", 6);
            if (f.length < 5 || f[1].length() < 4 || f[1].charAt(3) != 's') continue;
            String[] d = f[3].split(":");
            if (d.length != 2) continue;
            try {
                if (Integer.parseInt(d[0], 16) == major && Integer.parseInt(d[1], 16) == minor && Long.parseLong(f[4]) == inode) {
                    return Optional.of(line.trim());
                }
            } catch (NumberFormatException e) {
                // not a mapping line
            }
        }
        return Optional.empty();
    }

    /** Only a change that overlaps the buffer's range can matter (what {@link #change} lets through at once otherwise). */
    @Override
    public boolean interested(long start, long end) {
        DmaBuf buf = buf();
        return buf != null && start < buf.end() && buf.start() < Math.max(end, start + 1);
    }

    private ChangeWatch.Verdict deny(ChangeWatch.Task t, String what) {
        refused.incrementAndGet();
        String why = what + " by " + who(t) + " refused: " + description + " (ETXTBSY)";
        lastRefused = why;
        return new ChangeWatch.Verdict.Deny(ETXTBSY, why);
    }

    private static String who(ChangeWatch.Task t) {
        return "pid " + t.pid() + " (" + t.command() + ")";
    }

    /** Nothing pins any more and the dynamic importers let go: the blocks may move; the next map decides again. */
    private void moved() {
        FileMapping m;
        synchronized (this) {
            m = mapping;
            mapping = null;
        }
        if (m != null) unmap(m);
    }

    // ---- dma_buf ops

    /**
     * Under this guard's lock, so two importers mapping after a move decide once (planning reads
     * FIEMAP and cachestat, which raise no fanotify event, so no listener of this file waits on it).
     */
    @Override
    public synchronized List<Segment> map() throws IOException {
        if (released) throw new IllegalStateException(description + ": the pin is released");
        if (mapping != null) return mapping.segments();
        Decision d = decide();
        if (d.mapping() == null) throw new IOException(file.path() + " " + Units.range(request.start(), request.end())
                + ": after the blocks moved, the pin cannot be made again: " + d.refusal());
        return d.mapping().segments();
    }

    @Override
    public void release() {
        FileMapping m;
        ChangeWatch.Watch w;
        synchronized (this) {
            if (released) return;
            released = true;
            m = mapping;
            mapping = null;
            w = watch;
            watch = null;
        }
        io.directmap.lang.Closer<IOException> closer = io.directmap.lang.Closer.keeping(IOException.class);
        if (m != null) closer.run(() -> unmap(m));
        if (w != null) closer.run(w::close);
        closer.run(file::close);
        closer.run(() -> fs.pinGone(this));
        try {
            closer.throwIfFailed();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(file.path() + ": letting go of the pin failed", e);
        }
    }

    // ---- the block device takes its blocks back (detach, shrink, reclaim): nothing can hold that

    private void revoke(Invalidation inv) {
        revoked = true;      // the blocks are gone from under the buffer: refusing writers would hold nothing
        DmaBuf buf = buf();
        if (buf != null) buf.revoke(inv);
        moved();
    }

    /** The layer closes under a live pin: the buffer is revoked and what it held let go (its marks went with the watch). */
    void closeWithLayer() {
        revoke(Invalidation.of(request.start(), request.end(), Invalidation.Cause.UNMAPPED,
                "the file system layer was closed under the pin", false));
        release();
    }

    @Override
    public void invalidate(BlockDevice device, long deviceStart, long deviceEnd, BlockChange change, String detail) {
        revoke(Invalidation.of(request.start(), request.end(), Invalidation.Cause.BLOCK_DEVICE, change.code() + ": " + detail, false));
    }

    @Override
    public String describe() {
        return description;
    }

    /** A pin holds its windows until its last release: the aperture's reclaim passes them over. */
    @Override
    public boolean reclaimable() {
        return false;
    }

    /** What dmap pins shows of it. */
    PinInfo info() {
        DmaBuf buf = buf();
        List<String> attached = new ArrayList<>();
        if (buf != null) for (var a : buf.attachments()) attached.add(a.importer().name() + (a.dynamic() ? " (dynamic)" : ""));
        return new PinInfo(file.path(), file.stat().dev(), file.stat().inode(), request.start(), request.end(),
                request.importer().name(), createdMillis, buf == null ? 0 : buf.refCnt(), attached, buf != null && buf.pinned(),
                refused.get(), lastRefused);
    }
}
