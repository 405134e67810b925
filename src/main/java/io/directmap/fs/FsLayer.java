package io.directmap.fs;

import io.directmap.block.BlockDecision;
import io.directmap.block.BlockDevice;
import io.directmap.block.BlockLayer;
import io.directmap.block.Refusal;
import io.directmap.lang.Closer;
import io.directmap.sys.Errno;
import io.directmap.sys.Fiemap;
import io.directmap.sys.SysException;
import io.directmap.sys.Units;
import java.io.IOException;
import io.directmap.block.BlockChange;
import io.directmap.block.PeerMappings;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The one generic device_map shared by every file system (the fs/iomap of DirectMap): read the
 * extent map (FIEMAP), ask the page cache what it holds (cachestat), cut the range at extent and
 * cache boundaries, apply the policy, hand the direct candidates to the block device, record
 * what was handed out. Adapters ({@link FsAdapter}) supply only their policy and quirks.
 */
public final class FsLayer {
    private static final int MAX_STACKING = 8;

    private final BlockLayer blocks;
    private final Policy policy;
    private final MappingTracker tracker = new MappingTracker();
    private final AtomicLong ids = new AtomicLong();
    private final AtomicLong invalidations = new AtomicLong();
    // Keyed by the inode a loop device reads (LOOP_GET_STATUS64), never by its name: two loop devices
    // over two files that had one name at different times are two entries.
    private final Map<BackingId, Below> below = new java.util.concurrent.ConcurrentHashMap<>();
    private final Map<BackingId, OpenFile> backingFiles = new java.util.concurrent.ConcurrentHashMap<>();

    private record BackingId(int major, int minor, long inode) {
        static BackingId of(io.directmap.sys.BlockIoctl.LoopStatus s) {
            return new BackingId(s.backingDevMajor(), s.backingDevMinor(), s.backingInode());
        }
    }
    private final List<Consumer<InvalidationReport>> listeners = new CopyOnWriteArrayList<>();

    public FsLayer(BlockLayer blocks, Policy policy) {
        this.blocks = blocks;
        this.policy = policy;
    }

    public BlockLayer blocks() { return blocks; }
    public Policy policy() { return policy; }
    public MappingTracker tracker() { return tracker; }

    /** device_map for a caller with no one to tell on invalidation (explain, tests of this layer). */
    public DeviceMapping deviceMap(OpenFile file, MapRequest request) throws IOException {
        return deviceMap(file, request, MappingOwner.NOBODY);
    }

    /**
     * The file system's and block device's answer for request.start..request.end of file. First
     * the file system holds writers back (a read lease); then it decides; if a lease break raced
     * with the decision, it decides again. owner is told when the mapping is taken back.
     */
    public DeviceMapping deviceMap(OpenFile file, MapRequest request, MappingOwner owner) throws IOException {
        long t0 = System.nanoTime();
        long size = file.size();
        if (request.end() > roundUpPage(size)) {
            throw new InvalidRequestException(file.path() + ": range [" + request.start() + ", " + request.end()
                    + ") ends past the end of the file (" + size + " bytes)");
        }
        while (true) {
            long seq;
            synchronized (file.coherence) {
                seq = file.coherence.seq;
            }
            Optional<Refusal> noLease = holdWriters(file);
            List<Extent> placement = new ArrayList<>();
            List<Segment> segments = plan(file, request, 0, placement);
            if (noLease.isPresent()) segments = refuseDirect(segments, noLease.get());
            if (request.allOrNothing() && segments.stream().anyMatch(s -> s instanceof Segment.Fallback)) {
                segments = refuseAll(segments);
            }
            DeviceMapping m;
            synchronized (file.coherence) {
                if (file.coherence.seq != seq) {
                    // A lease broke (or was given back) while deciding: what was seen may be stale.
                    releaseGrants(segments);
                    continue;
                }
                m = new DeviceMapping(ids.incrementAndGet(), file, request, segments, System.nanoTime() - t0, owner,
                        noLease.isEmpty(), placement);
                tracker.add(m);
                file.coherence.liveMappings++;
            }
            List<PeerMappings.Entry> peers = new ArrayList<>();
            boolean goneMeanwhile = false;
            for (Segment s : segments) {
                if (s instanceof Segment.Direct d) {
                    peers.add(blocks.track(d.grant(), new PeerOwner(m, d)));
                    goneMeanwhile |= d.device().goingAway().isPresent();
                }
            }
            m.peerEntries(peers);
            if (goneMeanwhile) {
                // A device began going away after it granted and before we were tracked, so its
                // invalidation did not see us: give this back and decide again (it now refuses).
                deviceUnmap(m);
                continue;
            }
            emitEvents(m);
            return m;
        }
    }

    /** Releases what deviceMap handed out: the block devices' apertures and the tracking entry. */
    public void deviceUnmap(DeviceMapping m) {
        if (!m.retire()) return;
        for (PeerMappings.Entry e : m.peerEntries()) blocks.peers().unregister(e);
        releaseGrants(m.segments());
        tracker.remove(m);
        OpenFile file = m.file();
        synchronized (file.coherence) {
            if (--file.coherence.liveMappings == 0 && file.coherence.leaseHeld) {
                // Nothing mapped through this file any more: let writers go freely.
                leases().release(file.handle());
                file.coherence.leaseHeld = false;
                file.coherence.seq++;
            }
        }
    }

    /** Called for every invalidation, after the owners acknowledged (dmap watch, counters). */
    public void addInvalidationListener(Consumer<InvalidationReport> l) {
        listeners.add(l);
    }

    public void removeInvalidationListener(Consumer<InvalidationReport> l) {
        listeners.remove(l);
    }

    /**
     * Takes back every live mapping of the inode of file that overlaps [start, end): each owner is
     * told once and returns when its importers have let go; then the mappings are released. Mappings
     * of other ranges and other files are not touched. Returns what happened.
     *
     * <p>Every owner is told, whatever another one throws. An owner that throws is told again, up to
     * {@value #OWNER_TRIES} times in all (about 0.1 s); if it still has not acknowledged, its mappings
     * are revoked without it: they are retired (no read through them passes the read_retry check,
     * so nothing it reads after the writer goes on is delivered), their block-device grants and
     * tracking entries are released, and so is the lease. Then this throws an
     * {@link IllegalStateException} that names the file, the range and the owners, with each
     * owner's failure attached as suppressed. Waiting longer would only hold the writer back until
     * lease-break-time, after which the kernel lets it go anyway.
     */
    public InvalidationReport invalidate(OpenFile file, long start, long end, Invalidation.Cause cause, String detail) {
        Invalidation inv = Invalidation.of(start, end, cause, detail, false);
        Outcome o = invalidate(file.path(), tracker.overlapping(file, start, end), inv);
        if (o.failure() != null) throw o.failure();
        return o.report();
    }

    /** How often an owner that throws is told in all before its mappings are revoked without it. */
    private static final int OWNER_TRIES = io.directmap.mm.Acknowledge.TRIES;

    /** What an invalidation did, and the owners' failures (null when every owner acknowledged). */
    private record Outcome(InvalidationReport report, IllegalStateException failure) {}

    /** For callers with no one to throw to (a lease break, a read's re-check, a block device): logs failures. */
    private InvalidationReport invalidateLogging(java.nio.file.Path path, List<DeviceMapping> mappings, Invalidation inv) {
        Outcome o = invalidate(path, mappings, inv);
        if (o.failure() != null) log(o.failure().getMessage(), o.failure());
        return o.report();
    }

    private Outcome invalidate(java.nio.file.Path path, List<DeviceMapping> mappings, Invalidation inv) {
        Map<MappingOwner, Boolean> owners = new IdentityHashMap<>();
        int n = 0;
        for (DeviceMapping m : mappings) {
            if (!m.isLive()) continue;
            n++;
            owners.put(m.owner(), true);
        }
        if (io.directmap.fault.Faults.fire(io.directmap.fault.FaultPoint.SKIP_INVALIDATE)) {
            // The fault: nobody is told and nothing is taken back, as a file system that forgot to
            // invalidate. The coherence torture must then find stale blocks (it checks the checker).
            return new Outcome(new InvalidationReport(path, inv, 0, 0, 0), null);
        }
        List<Throwable> failed = new ArrayList<>();
        for (MappingOwner o : owners.keySet()) {
            Throwable t = tell(o, inv, path);
            if (t != null) failed.add(t);
        }
        // Only now release: every owner acknowledged, or was revoked (its mappings retired here).
        for (DeviceMapping m : mappings) {
            try {
                deviceUnmap(m);
            } catch (RuntimeException e) {
                failed.add(e);
            }
        }
        long ack = System.nanoTime() - inv.raisedNanos();
        InvalidationReport report = new InvalidationReport(path, inv, n, owners.size(), ack);
        invalidations.incrementAndGet();
        InvalidationEvent ev = new InvalidationEvent();
        if (ev.isEnabled()) {
            ev.file = path.toString();
            ev.start = inv.start();
            ev.end = inv.end();
            ev.cause = inv.cause().code();
            ev.detail = inv.detail();
            ev.heldBack = inv.heldBack();
            ev.mappings = n;
            ev.ackNanos = ack;
            ev.commit();
        }
        for (Consumer<InvalidationReport> l : listeners) {
            try {
                l.accept(report);
            } catch (RuntimeException e) {
                log("an invalidation listener failed on " + path + ": " + e, e);
            }
        }
        if (failed.isEmpty()) return new Outcome(report, null);
        IllegalStateException failure = new IllegalStateException(path + " " + inv + ": " + failed.size() + " of "
                + owners.size() + " owners did not let go after " + OWNER_TRIES + " tries (or a release failed); their "
                + "mappings were revoked without them (no read through them is delivered) and released; fix or restart "
                + "the importer (the suppressed exceptions say what it threw)");
        failed.forEach(failure::addSuppressed);
        return new Outcome(report, failure);
    }

    /** Tells owner o, again if it throws (bounded); null once it acknowledged, else what it threw. */
    private static Throwable tell(MappingOwner o, Invalidation inv, java.nio.file.Path path) {
        return io.directmap.mm.Acknowledge.until(() -> o.invalidate(inv));
    }

    /** One line on stderr (the stack trace too with DMAP_DEBUG set), for failures no caller can be told of. */
    private static void log(String message, Throwable t) {
        System.err.println("dmap: " + message);
        if (t != null && System.getenv("DMAP_DEBUG") != null) t.printStackTrace();
    }

    /** A device moved bytes one way in nanos (request time): what the learning policy learns from. */
    public void observe(PathLearner.Way way, long bytes, long nanos) {
        if (policy.learner() != null) policy.learner().observe(way, bytes, nanos);
    }

    /** How many invalidations this file system has made. */
    public long invalidations() { return invalidations.get(); }

    /**
     * The read_retry check for what a lease cannot hold back (blocks moved by defragment, balance or
     * dedupe, which need no write access): is [start, end) of m still placed where it was when
     * decided? If not, every mapping overlapping the range is taken back and this returns false;
     * the caller drops what it read and faults again.
     */
    public boolean verify(DeviceMapping m, long start, long end) throws SysException {
        if (!m.isLive()) return false;
        // While skip_invalidate is on, the checks that would take the mapping back after the fact are skipped too.
        if (io.directmap.fault.Faults.isOn(io.directmap.fault.FaultPoint.SKIP_INVALIDATE)) return true;
        if (m.coherent() && !leaseStillHeld(m)) return false;
        if (m.directBytes() == 0) return m.isLive();
        List<Extent> now = typedExtents(m.file(), start, end);
        String moved = null;
        for (Segment s : m.segments()) {
            if (!(s instanceof Segment.Direct)) continue;
            long a = Math.max(s.start(), start), b = Math.min(s.end(), end);
            if (a >= b) continue;
            moved = firstDifference(m.placement(), now, a, b);
            if (moved != null) break;
        }
        if (moved == null) return m.isLive();
        invalidateLogging(m.file().path(), tracker.overlapping(m.file(), start, end),
                Invalidation.of(start, end, Invalidation.Cause.EXTENT_MOVED, moved, false));
        return false;
    }

    /**
     * The last check before bytes of a mapping said to be coherent are delivered: does its file
     * still hold the read lease (F_GETLEASE)? A lease being broken already reports F_UNLCK, so a
     * writer that is waiting, or was let go by the kernel after lease-break-time, is seen here even
     * if its break has not reached the importer yet. Then every mapping through that lease is taken
     * back now (the break's own handler finds nothing left to do) and the read is done again.
     */
    private boolean leaseStillHeld(DeviceMapping m) {
        OpenFile file = m.file();
        if (leases().held(file.handle())) return true;
        if (!m.isLive()) return false;
        invalidateLogging(file.path(), mappingsOf(file), Invalidation.of(0, Long.MAX_VALUE, Invalidation.Cause.WRITE_OPEN,
                "the read lease is no longer held (fcntl F_GETLEASE): another process opened it for writing or truncated it; "
                        + "what was read meanwhile is read again", false));
        return false;
    }

    /** The live mappings made through this open file (and so through its lease). */
    private List<DeviceMapping> mappingsOf(OpenFile file) {
        return tracker.overlapping(file, 0, Long.MAX_VALUE).stream().filter(x -> x.file() == file).toList();
    }

    /** Where the extents of was and now over [a, b) first disagree, or null where they agree. */
    private static String firstDifference(List<Extent> was, List<Extent> now, long a, long b) {
        long at = a;
        while (at < b) {
            Extent x = covering(was, at), y = covering(now, at);
            if (x == null || y == null) return "no extent at " + at;
            if (x.kind() != y.kind() || x.physical() + (at - x.start()) != y.physical() + (at - y.start())) {
                return "offset " + at + " was " + x.kind().name().toLowerCase(java.util.Locale.ROOT) + " at " + (x.physical() + (at - x.start()))
                        + ", now " + y.kind().name().toLowerCase(java.util.Locale.ROOT) + " at " + (y.physical() + (at - y.start()));
            }
            at = Math.min(x.end(), y.end());
        }
        return null;
    }

    private static Extent covering(List<Extent> xs, long at) {
        for (Extent x : xs) if (x.start() <= at && at < x.end()) return x;
        return null;
    }

    /**
     * Holds other processes' writes back for as long as mappings of file live: a read lease on its
     * descriptor. When one cannot be taken (someone has the file open for writing, or the caller
     * may not), the refusal says so and the range is not mapped directly.
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
                leases().take(file.handle(), h -> leaseBroken(file));
            } catch (SysException e) {
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

    /** On the lease thread: another process is waiting in open() or truncate() until the devices let go. */
    private void leaseBroken(OpenFile file) {
        synchronized (file.coherence) {
            file.coherence.seq++;
            file.coherence.leaseHeld = false;
            file.coherence.breaking = true;
        }
        try {
            invalidateLogging(file.path(), mappingsOf(file),
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

    /** A block device takes back a peer mapping: the file range behind it is invalidated. */
    private final class PeerOwner implements PeerMappings.Owner {
        private final DeviceMapping m;
        private final Segment.Direct d;

        PeerOwner(DeviceMapping m, Segment.Direct d) {
            this.m = m;
            this.d = d;
        }

        @Override
        public void invalidate(io.directmap.block.BlockDevice device, long deviceStart, long deviceEnd, BlockChange change,
                               String detail) {
            if (!m.isLive()) return;
            long from = d.start() + Math.max(0, deviceStart - d.deviceOffset());
            long to = deviceEnd == Long.MAX_VALUE ? d.end() : Math.min(d.end(), d.start() + (deviceEnd - d.deviceOffset()));
            invalidateLogging(m.file().path(), tracker.overlapping(m.file(), from, Math.max(to, from + 1)),
                    Invalidation.of(from, Math.max(to, from + 1), Invalidation.Cause.BLOCK_DEVICE,
                            change.code() + ": " + detail, false));
        }

        @Override
        public String describe() {
            return m.file().path() + " " + Units.range(d.start(), d.end()) + " for " + m.importer().name();
        }
    }

    private void releaseGrants(List<Segment> segments) {
        for (Segment s : segments) {
            if (s instanceof Segment.Direct d) blocks.release(d.grant());
        }
    }

    /** Direct segments become fallbacks for refusal (no lease: the blocks could change unseen). */
    private List<Segment> refuseDirect(List<Segment> segments, Refusal refusal) {
        List<Segment> out = new ArrayList<>();
        for (Segment s : segments) {
            if (s instanceof Segment.Direct d) {
                blocks.release(d.grant());
                out.add(new Segment.Fallback(d.start(), d.end(), refusal));
            } else {
                out.add(s);
            }
        }
        return merge(out);
    }

    /** The typed extents of [start, end) as the adapter converts them, holes included (for explain). */
    public List<Extent> extents(OpenFile file, long start, long end) throws SysException {
        return typedExtents(file, start, end);
    }

    private List<Segment> plan(OpenFile file, MapRequest r, int depth, List<Extent> placement) throws IOException {
        long start = r.start(), end = r.end();
        List<Segment> out = new ArrayList<>();
        if (r.pin()) return List.of(fallback(start, end, FsReason.PIN_NOT_SUPPORTED, "DEVICE_MAP_FLAG_PIN asked"));
        if (r.write()) return List.of(fallback(start, end, FsReason.WRITE_NOT_SUPPORTED, "DEVICE_MAP_FLAG_WRITE asked"));
        var whole = file.adapter().fileRefusal(file);
        if (whole.isPresent()) return List.of(new Segment.Fallback(start, end, whole.get()));

        List<Extent> extents;
        try {
            extents = typedExtents(file, start, end);
            placement.addAll(extents);
        } catch (SysException e) {
            if (e.errno() == Errno.EOPNOTSUPP || e.errno() == Errno.ENOTTY) {
                return List.of(fallback(start, end, FsReason.NO_FIEMAP, file.fsType() + ": " + e.shortReason()));
            }
            throw e;
        }
        List<PageCacheRuns.Run> runs;
        String cacheProblem = null;
        try {
            runs = PageCacheRuns.of(file.handle(), start, end);
        } catch (SysException e) {
            runs = List.of();
            cacheProblem = "cachestat: " + e.shortReason();
        }
        Location.Locator locator = file.adapter().locator(file, blocks);
        for (Extent x : extents) {
            if (x.kind() != Extent.Kind.MAPPED) {
                out.add(fallback(x.start(), x.end(), x.kind().refusal(), file.fsType() + " extent " + Units.range(x.start(), x.end())));
            } else if (x.shared() && r.write()) {
                out.add(fallback(x.start(), x.end(), FsReason.SHARED_FOR_WRITE, "extent " + Units.range(x.start(), x.end())));
            } else if (cacheProblem != null) {
                out.add(fallback(x.start(), x.end(), FsReason.CACHE_STATE_UNKNOWN, cacheProblem));
            } else {
                for (PageCacheRuns.Run run : runs) {
                    long s = Math.max(x.start(), run.start()), e = Math.min(x.end(), run.end());
                    if (s >= e) continue;
                    long pages = (run.end() - run.start()) / io.directmap.sys.Process.PAGE_SIZE;
                    if (run.dirty()) {
                        out.add(fallback(s, e, FsReason.PAGE_DIRTY, pages + " dirty pages in " + Units.range(run.start(), run.end())));
                    } else if (policy.learner() != null && depth == 0) {
                        PathLearner.Choice c = run.cached() ? policy.learner().chooseCached(e - s) : policy.learner().chooseCold(e - s);
                        if (c.direct()) {
                            place(file, r, locator, s, x.physical() + (s - x.start()), e - s, depth, out);
                        } else {
                            out.add(fallback(s, e, run.cached() ? FsReason.PAGE_CACHED : FsReason.CACHE_FASTER, c.why()));
                        }
                    } else if (run.cached() && policy.cachedPages() == Policy.CachedPages.REFUSE) {
                        out.add(fallback(s, e, FsReason.PAGE_CACHED, pages + " cached pages in " + Units.range(run.start(), run.end())));
                    } else {
                        place(file, r, locator, s, x.physical() + (s - x.start()), e - s, depth, out);
                    }
                }
            }
        }
        return merge(out);
    }

    /** Sends a direct candidate to the block device, following loop devices to their backing files. */
    private void place(OpenFile file, MapRequest r, Location.Locator locator, long fileStart, long physical, long length,
                       int depth, List<Segment> out) throws IOException {
        long done = 0;
        while (done < length) {
            long s = fileStart + done;
            Location loc = locator.locate(physical + done, length - done);
            switch (loc) {
                case Location.Unplaceable u -> {
                    out.add(new Segment.Fallback(s, s + u.length(), u.refusal()));
                    done += u.length();
                }
                case Location.Placed p -> done += decideOnce(p, s, r, depth, out);
            }
        }
    }

    /** One block-device decision for the start of a placed run; returns how many bytes it covered. */
    private long decideOnce(Location.Placed p, long fileStart, MapRequest r, int depth, List<Segment> out) throws IOException {
        switch (blocks.decide(p.device(), p.offset(), p.length(), access(r))) {
            case BlockDecision.Granted g -> {
                out.add(new Segment.Direct(fileStart, fileStart + g.length(), g, g.device().name()));
                return g.length();
            }
            case BlockDecision.Refused f -> {
                out.add(new Segment.Fallback(fileStart, fileStart + p.length(), f.refusal()));
                return p.length();
            }
            case BlockDecision.Redirect rd -> {
                followLoop(rd, fileStart, p.length(), r, depth, out);
                return p.length();
            }
        }
    }

    /** Asks dev itself for [devOffset, +length), as often as partial grants need. */
    private void decideHere(BlockDevice dev, long devOffset, long fileStart, long length, MapRequest r, String route,
                            List<Segment> out) {
        long done = 0;
        while (done < length) {
            switch (blocks.decideHere(dev, devOffset + done, length - done, access(r))) {
                case BlockDecision.Granted g -> {
                    out.add(new Segment.Direct(fileStart + done, fileStart + done + g.length(), g, route));
                    done += g.length();
                }
                case BlockDecision.Refused no -> {
                    out.add(new Segment.Fallback(fileStart + done, fileStart + length, no.refusal()));
                    done = length;
                }
                case BlockDecision.Redirect again -> throw new IllegalStateException("decideHere redirected: " + again);
            }
        }
    }

    private static io.directmap.block.Access access(MapRequest r) {
        return new io.directmap.block.Access(r.importer(), r.write(), r.atomic());
    }

    /**
     * A loop device's bytes are its backing file's: map that file again and take what it grants
     * (a shorter path to the hardware); what it refuses, the loop device itself is asked for.
     */
    private void followLoop(BlockDecision.Redirect rd, long fileStart, long length, MapRequest r, int depth,
                            List<Segment> out) throws IOException {
        String loop = rd.through().name();
        List<Segment> below;
        if (depth + 1 >= MAX_STACKING) {
            below = List.of(fallback(rd.backingOffset(), rd.backingOffset() + length, FsReason.STACKING_TOO_DEEP,
                    MAX_STACKING + " levels"));
        } else {
            try {
                Optional<Refusal> dead = unreadableBelow(rd.through());
                OpenFile file = dead.isPresent() ? null : backing(rd.through());
                if (file == null && dead.isEmpty()) dead = Optional.of(notTheBackingFile(rd.through()));
                below = dead.isPresent()
                        ? List.of(new Segment.Fallback(rd.backingOffset(), rd.backingOffset() + length, dead.get()))
                        : plan(file, new MapRequest(r.importer(), rd.backingOffset(),
                                rd.backingOffset() + length, r.write(), r.atomic(), false, false), depth + 1, new ArrayList<>());
            } catch (IOException e) {
                below = List.of(fallback(rd.backingOffset(), rd.backingOffset() + length, FsReason.NO_BLOCK_DEVICE,
                        "backing file " + rd.backingFile() + ": " + e.getMessage()));
            }
        }
        for (Segment b : below) {
            long s = fileStart + (b.start() - rd.backingOffset());
            switch (b) {
                case Segment.Direct d -> out.add(new Segment.Direct(s, s + d.length(), d.grant(), loop + " > " + d.route()));
                case Segment.Fallback f -> decideHere(rd.through(), rd.offset() + (b.start() - rd.backingOffset()), s,
                        b.length(), r, loop + " (its backing file: " + f.refusal().reason().code() + ")", out);
            }
        }
    }

    /**
     * The refusal every range of a backing file would get when its file system's block device is
     * already known to be unreadable: the loop device is then asked at once, without opening and
     * mapping the backing file again on every fault.
     */
    private Optional<Refusal> unreadableBelow(BlockDevice loop) {
        // A fault over many extents asks once per extent: remember the answer briefly. Remembering a
        // refusal too long only refuses longer (the safe side); a device that changes is seen in 100 ms.
        long now = System.nanoTime();
        BackingId id = BackingId.of(loop.backing().orElseThrow().status());
        Below b = below.get(id);
        if (b != null && now - b.at() < 100_000_000L) return b.refusal();
        Optional<Refusal> r = lookUpUnreadableBelow(loop.backing().orElseThrow().status());
        below.put(id, new Below(r, now));
        return r;
    }

    private record Below(Optional<Refusal> refusal, long at) {}

    /** The backing file's device, as the loop device's kernel status names it (not the path's st_dev). */
    private Optional<Refusal> lookUpUnreadableBelow(io.directmap.sys.BlockIoctl.LoopStatus status) {
        Optional<io.directmap.block.BlockDevice> dev = blocks.known(status.backingDevMajor(), status.backingDevMinor());
        if (dev.isPresent() && dev.get().openFailure().isPresent()) {
            return Optional.of(new Refusal(io.directmap.block.BlockReason.UNREADABLE, dev.get().devNode()
                    + ": open O_DIRECT failed with " + dev.get().openFailure().get().shortReason()));
        }
        return Optional.empty();
    }

    /**
     * The backing file of a loop device, kept open while the name still leads to the inode the
     * kernel reads (LOOP_GET_STATUS64's lo_device and lo_inode); null when it leads elsewhere (the
     * file was replaced or renamed, or this process sees another mount namespace): its blocks are
     * not the loop device's, and the loop device itself is asked instead.
     */
    private OpenFile backing(BlockDevice loop) throws IOException {
        BlockDevice.Backing b = loop.backing().orElseThrow();
        BackingId id = BackingId.of(b.status());
        OpenFile f = backingFiles.get(id);
        if (f != null) return f;   // the very inode: open until close(), never closed under another lookup
        OpenFile fresh = openIfBacking(b.file(), b.status());
        if (fresh == null) {
            // Not by its name (unnamed, unlinked, replaced): through a descriptor of ours on that very inode, if any.
            var st = b.status();
            var held = io.directmap.sys.Openers.heldBySelf(st.backingDevMajor(), st.backingDevMinor(), st.backingInode());
            if (held.isPresent()) fresh = openIfBacking(held.get(), st);
        }
        if (fresh == null) return null;
        OpenFile raced = backingFiles.putIfAbsent(id, fresh);
        if (raced == null) return fresh;
        fresh.close();            // another fault opened it first: use that one
        return raced;
    }

    /** The file at path, open, if it is the inode the loop device reads; else null. */
    private static OpenFile openIfBacking(java.nio.file.Path path, io.directmap.sys.BlockIoctl.LoopStatus status) throws IOException {
        OpenFile f;
        try {
            f = OpenFile.open(path);
        } catch (InvalidRequestException e) {
            return null; // no such file, or not a regular one, by that name: not the backing file
        }
        if (isBacking(f.stat(), status)) return f;
        f.close();
        return null;
    }

    private static boolean isBacking(io.directmap.sys.Statx.Info st, io.directmap.sys.BlockIoctl.LoopStatus status) {
        return st.devMajor() == status.backingDevMajor() && st.devMinor() == status.backingDevMinor()
                && st.inode() == status.backingInode();
    }

    private static Refusal notTheBackingFile(BlockDevice loop) {
        BlockDevice.Backing b = loop.backing().orElseThrow();
        return new Refusal(io.directmap.block.BlockReason.IDENTITY_MISMATCH, b.file() + " is not the file " + loop.name()
                + " reads (" + b.status().describe() + "): it was deleted or replaced, or this process sees another mount"
                + " namespace; " + loop.name() + " itself is read instead");
    }

    /** Closes the backing files kept open. */
    public void close() throws SysException {
        Closer<SysException> closer = Closer.keeping(SysException.class);
        closer.closeEach(backingFiles.values(), OpenFile::close);
        backingFiles.clear();
        closer.throwIfFailed();
    }

    private List<Extent> typedExtents(OpenFile file, long start, long end) throws SysException {
        List<Extent> out = new ArrayList<>();
        long at = start;
        for (Fiemap.Extent raw : Fiemap.extents(file.handle(), start, end - start, 0)) {
            Extent x = file.adapter().convert(raw);
            long s = Math.max(x.start(), start), e = Math.min(x.end(), end);
            if (e <= at) continue;
            if (s > at) out.add(new Extent(at, s, Extent.Kind.HOLE, 0, false));
            s = Math.max(s, at);
            out.add(new Extent(s, e, x.kind(), x.physical() + (s - x.start()), x.shared()));
            at = e;
        }
        if (at < end) out.add(new Extent(at, end, Extent.Kind.HOLE, 0, false));
        return out;
    }

    /** Adjacent segments with the same outcome become one (contiguous device ranges, equal refusals). */
    private static List<Segment> merge(List<Segment> in) {
        List<Segment> out = new ArrayList<>(in.size());
        for (Segment s : in) {
            Segment last = out.isEmpty() ? null : out.getLast();
            Segment joined = last == null || last.end() != s.start() ? null : join(last, s);
            if (joined != null) out.set(out.size() - 1, joined); else out.add(s);
        }
        return out;
    }

    private static Segment join(Segment a, Segment b) {
        if (a instanceof Segment.Direct x && b instanceof Segment.Direct y
                && x.device() == y.device() && x.deviceOffset() + x.length() == y.deviceOffset() && x.route().equals(y.route())) {
            var g = new BlockDecision.Granted(x.device(), x.deviceOffset(), x.grant().length() + y.grant().length(), x.busAddress());
            return new Segment.Direct(x.start(), y.end(), g, x.route());
        }
        if (a instanceof Segment.Fallback x && b instanceof Segment.Fallback y && x.refusal().equals(y.refusal())) {
            return new Segment.Fallback(x.start(), y.end(), x.refusal());
        }
        return null;
    }

    /** The proposal's contract: success for the whole range, or failure and fall back entirely. */
    private List<Segment> refuseAll(List<Segment> segments) {
        long refused = 0;
        Refusal first = null;
        for (Segment s : segments) {
            if (s instanceof Segment.Fallback f) {
                refused += f.length();
                if (first == null) first = f.refusal();
            }
        }
        String detail = Units.bytes(refused) + " of the range refused, first: " + first;
        List<Segment> out = new ArrayList<>();
        for (Segment s : segments) {
            if (s instanceof Segment.Direct d) {
                blocks.release(d.grant());
                out.add(fallback(d.start(), d.end(), FsReason.ALL_OR_NOTHING, detail));
            } else {
                out.add(s);
            }
        }
        return merge(out);
    }

    private static Segment.Fallback fallback(long start, long end, FsReason reason, String detail) {
        return new Segment.Fallback(start, end, new Refusal(reason, detail));
    }

    private static void emitEvents(DeviceMapping m) {
        for (Segment s : m.segments()) {
            DeviceMapEvent ev = new DeviceMapEvent();
            if (!ev.isEnabled()) return;
            ev.file = m.file().path().toString();
            ev.start = s.start();
            ev.end = s.end();
            ev.importer = m.importer().name();
            switch (s) {
                case Segment.Direct d -> {
                    ev.outcome = "direct";
                    ev.device = d.device().devNode().toString();
                    ev.busAddress = d.busAddress();
                }
                case Segment.Fallback f -> {
                    ev.outcome = "fallback";
                    ev.refusedBy = f.refusal().reason().layer().label();
                    ev.reason = f.refusal().reason().code();
                    ev.detail = f.refusal().detail();
                }
            }
            ev.commit();
        }
    }

    private static long roundUpPage(long v) {
        long p = io.directmap.sys.Process.PAGE_SIZE;
        return (v + p - 1) / p * p;
    }
}
