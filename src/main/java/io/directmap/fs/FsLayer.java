package io.directmap.fs;

import io.directmap.block.BlockLayer;
import io.directmap.block.PeerMappings;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapRequest;
import io.directmap.mm.MappingOwner;
import io.directmap.mm.Segment;
import io.directmap.mm.Transfer;
import io.directmap.sys.SysException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * The one generic device_map shared by every file system (the fs/iomap of DirectMap), and its
 * device_unmap and invalidation: the entry points, in the order the proposal gives them. The work
 * is done by one class per job: {@link RangePlanner} plans a range (with {@link LoopFollower}
 * under loop devices), {@link WriterGate} holds writers back, {@link Invalidator} takes mappings
 * back, {@link PlacementCheck} re-checks placement at read_retry. Adapters ({@link FsAdapter})
 * supply only their policy and quirks.
 */
public final class FsLayer {
    private final BlockLayer blocks;
    private final Policy policy;
    private final MappingTracker tracker = new MappingTracker();
    private final AtomicLong ids = new AtomicLong();
    private final LoopFollower loops;
    private final RangePlanner planner;
    private final Invalidator invalidator;
    private final WriterGate writers;
    private final PlacementCheck placement;
    /** The live pins (device_map with PIN), each with its dma_buf; guarded by itself. */
    private final List<PinGuard> pins = new ArrayList<>();
    private final DeviceWrites writes = new DeviceWrites();
    private final OwnCachePages ownPages = new OwnCachePages();
    /** Where the change watch comes from (the stack's); null: this layer opens its own on first use. */
    private final java.util.function.Supplier<ChangeWatch> stackChanges;
    /** The change watch this layer opened itself (guarded by this); closed with it. */
    private ChangeWatch ownChanges;
    private boolean closed;   // guarded by this

    /** A file system layer over blocks that opens its own change watch when policy wants range events. */
    public FsLayer(BlockLayer blocks, Policy policy) {
        this(blocks, policy, null);
    }

    /** As above, hearing of changes through changes (the stack's watch, closed by the stack) when policy wants range events. */
    FsLayer(BlockLayer blocks, Policy policy, java.util.function.Supplier<ChangeWatch> changes) {
        this.blocks = blocks;
        this.policy = policy;
        this.stackChanges = changes;
        this.loops = new LoopFollower(blocks);
        this.planner = new RangePlanner(blocks, policy, loops);
        this.invalidator = new Invalidator(this::deviceUnmap);
        this.writers = new WriterGate(tracker, invalidator, policy.rangeEvents() ? this::changeWatch : null);
        this.placement = new PlacementCheck(tracker, planner, writers, invalidator);
    }

    public BlockLayer blocks() { return blocks; }
    public Policy policy() { return policy; }
    public MappingTracker tracker() { return tracker; }

    /** device_map for a caller with no one to tell on invalidation (explain, tests of this layer). */
    public FileMapping deviceMap(OpenFile file, MapRequest request) throws IOException {
        return deviceMap(file, request, MappingOwner.NOBODY);
    }

    /**
     * The file system's and block device's answer for request.start..request.end of file. First
     * the file system holds writers back (range events, or a read lease: {@link WriterGate}); then
     * it decides; if a change raced with the decision, it decides again. owner is told when the
     * mapping is taken back.
     */
    public FileMapping deviceMap(OpenFile file, MapRequest request, MappingOwner owner) throws IOException {
        long t0 = System.nanoTime();
        long size = file.size();
        if (request.end() > roundUpPage(size) && !request.write()) {
            throw new InvalidRequestException(file.path() + ": range [" + request.start() + ", " + request.end()
                    + ") ends past the end of the file (" + size + " bytes)");
        }
        while (true) {
            long seq;
            synchronized (file.coherence) {
                seq = file.coherence.seq;
            }
            WriterGate.Hold hold = writers.hold(file, request.start(), request.end());
            // Nothing holds the range back: what our own fallback brought into the cache may go, so it is read directly again.
            if (hold.coherent()) ownPages.dropBefore(file, request.start(), request.end());
            List<Extent> placement = new ArrayList<>();
            List<Segment> segments = planner.plan(file, request, 0, placement);
            segments = hold.apply(segments, planner);
            if (request.allOrNothing() && segments.stream().anyMatch(s -> s instanceof Segment.Fallback)) {
                segments = planner.refuseAll(segments);
            }
            FileMapping m;
            synchronized (file.coherence) {
                if (file.coherence.seq != seq) {
                    // A lease broke (or was given back) while deciding: what was seen may be stale.
                    planner.releaseGrants(segments);
                    continue;
                }
                m = new FileMapping(ids.incrementAndGet(), file, request, segments, System.nanoTime() - t0, owner,
                        hold.coherent(), placement);
                tracker.add(m);
                file.coherence.liveMappings++;
            }
            List<PeerMappings.Entry> peers = new ArrayList<>();
            boolean goneMeanwhile = false;
            for (Segment s : segments) {
                if (s instanceof Segment.Direct d) {
                    peers.add(blocks.track(Segments.grant(d), new PeerOwner(m, d, tracker, invalidator)));
                    goneMeanwhile |= Segments.device(d).goingAway().isPresent();
                }
            }
            m.peerEntries(peers);
            if (!m.isLive()) {
                // Taken back between tracker.add and here (a reclaim, shrink or detach saw us
                // through the entries registered so far): its deviceUnmap found the list empty and
                // released the grants, so these entries are ours to drop. Both sides may drop the
                // same entry (volatile live and peerEntries: one of us sees the other), which is
                // harmless. Decide again, as when a device was going away.
                for (PeerMappings.Entry e : peers) blocks.peers().unregister(e);
                continue;
            }
            if (goneMeanwhile) {
                // A device began going away after it granted and before we were tracked, so its
                // invalidation did not see us: give this back and decide again (it now refuses).
                deviceUnmap(m);
                continue;
            }
            ownPages.decided(file, segments);
            emitEvents(m);
            return m;
        }
    }

    /**
     * Releases what deviceMap handed out: the block devices' apertures and the tracking entry.
     * Idempotent. A mapping this file system did not make is refused (IllegalArgumentException).
     */
    public void deviceUnmap(DeviceMapping mapping) {
        FileMapping m = own(mapping);
        if (!m.retire()) return;
        for (PeerMappings.Entry e : m.peerEntries()) blocks.peers().unregister(e);
        planner.releaseGrants(m.segments());
        tracker.remove(m);
        writers.mappingGone(m.file());
    }

    /**
     * The write fault path: src goes into the file at offset through the file system (pwrite on
     * the descriptor that holds the write lease), as a CPU store through the mapping would.
     */
    public void store(OpenFile file, long offset, java.lang.foreign.MemorySegment src) throws IOException {
        writes.store(file, offset, src);
    }

    /** A lease break of file under way is let through before a write pins more (see {@link WriterGate#awaitBreak}). */
    public void awaitLeaseBreak(OpenFile file) {
        writers.awaitBreak(file);
    }

    /** After a device wrote [start, end) through m (src holds what it wrote): see {@link DeviceWrites#written}. */
    public void written(DeviceMapping m, long start, long end, java.lang.foreign.MemorySegment src, boolean durable) throws IOException {
        writes.written(own(m), start, end, src, durable);
    }

    /** Called for every invalidation, after the owners acknowledged (dmap watch, counters). */
    public void addInvalidationListener(Consumer<InvalidationReport> l) {
        invalidator.addListener(l);
    }

    public void removeInvalidationListener(Consumer<InvalidationReport> l) {
        invalidator.removeListener(l);
    }

    /**
     * Takes back every live mapping of the inode of file that overlaps [start, end): each owner is
     * told once and returns when its importers have let go; then the mappings are released. Mappings
     * of other ranges and other files are not touched. Returns what happened.
     *
     * <p>Every owner is told, whatever another one throws. An owner that throws is told again, up to
     * {@value io.directmap.mm.Acknowledge#TRIES} times in all (about 0.1 s); if it still has not acknowledged, its mappings
     * are revoked without it: they are retired (no read through them passes the read_retry check,
     * so nothing it reads after the writer goes on is delivered), their block-device grants and
     * tracking entries are released, and so is the lease. Then this throws an
     * {@link IllegalStateException} that names the file, the range and the owners, with each
     * owner's failure attached as suppressed. Waiting longer would only hold the writer back until
     * lease-break-time, after which the kernel lets it go anyway.
     */
    public InvalidationReport invalidate(OpenFile file, long start, long end, Invalidation.Cause cause, String detail) {
        Invalidation inv = Invalidation.of(start, end, cause, detail, false);
        Invalidator.Outcome o = invalidator.invalidate(file.path(), tracker.overlapping(file, start, end), inv);
        if (o.failure() != null) throw o.failure();
        return o.report();
    }

    /** A device moved bytes one way in nanos (request time): what the learning policy learns from. */
    public void observe(Transfer way, long bytes, long nanos) {
        if (policy.learner() != null) policy.learner().observe(way, bytes, nanos);
    }

    /** How many invalidations this file system has made. */
    public long invalidations() { return invalidator.count(); }

    /**
     * How other processes' changes to the file at path are held back, in words: range events or a
     * read lease (and why not range events). Asks about an open file with live mappings of that
     * path, or else says what a new one would get.
     */
    public String changesHeardBy(java.nio.file.Path path) {
        java.nio.file.Path abs = path.toAbsolutePath().normalize();
        for (FileMapping m : tracker.all()) {
            if (m.file().path().equals(abs)) return writers.heardBy(m.file());
        }
        return writers.heardBy(null);
    }

    /** The change watch, opened on first use; null once closed. */
    private synchronized ChangeWatch changeWatch() {
        if (closed) return null;
        if (stackChanges != null) return stackChanges.get();
        if (ownChanges == null) ownChanges = ChangeWatch.open();
        return ownChanges;
    }

    /**
     * The read_retry check for what a lease cannot hold back (blocks moved by defragment, balance or
     * dedupe, which need no write access): is [start, end) of m still placed where it was when
     * decided? If not, every mapping overlapping the range is taken back and this returns false;
     * the caller drops what it read and faults again.
     */
    public boolean verify(DeviceMapping m, long start, long end) throws SysException {
        return placement.verify(own(m), start, end);
    }

    /** m as the file system's own mapping; anything else (another exporter's) is refused with both named. */
    private static FileMapping own(DeviceMapping m) {
        if (m instanceof FileMapping f) return f;
        throw new IllegalArgumentException(m + " was not made by the file system's device_map (it is a "
                + m.getClass().getName() + "); give it back to the VmOperations that made it");
    }

    /** The typed extents of [start, end) as the adapter converts them, holes included (for explain). */
    public List<Extent> extents(OpenFile file, long start, long end) throws SysException {
        return planner.typedExtents(file, start, end);
    }

    /**
     * device_map with DEVICE_MAP_FLAG_PIN (the proposal's dma_buf): the whole of [request.start,
     * request.end) of file direct, in a {@link io.directmap.dmabuf.DmaBuf} whose lifetime is its own
     * (the vma and file may close), its blocks held in place while it is pinned: every other
     * descriptor's open for writing and change of the range is refused with ETXTBSY (see
     * {@link PinGuard}). Refused, with its reason, where that cannot hold (btrfs, no change watch,
     * the file open for writing elsewhere, part of the range not direct).
     */
    public PinOutcome pin(OpenFile file, MapRequest request, ChangeWatch changes) throws IOException {
        long size = file.size();
        if (request.end() > roundUpPage(size) || request.end() <= request.start()) {
            throw new InvalidRequestException(file.path() + ": pin of [" + request.start() + ", " + request.end()
                    + ") is empty or ends past the end of the file (" + size + " bytes)");
        }
        return PinGuard.pin(this, changes, file, request);
    }

    /** {@return the live pins, in the order they were made} */
    public List<PinInfo> pins() {
        List<PinGuard> all;
        synchronized (pins) {
            all = List.copyOf(pins);
        }
        return all.stream().map(PinGuard::info).toList();
    }

    void pinMade(PinGuard g) {
        synchronized (pins) {
            pins.add(g);
        }
    }

    void pinGone(PinGuard g) {
        synchronized (pins) {
            pins.remove(g);
        }
    }

    RangePlanner planner() { return planner; }
    long nextId() { return ids.incrementAndGet(); }

    /**
     * Revokes and lets go the pins still live, closes its own change watch (its marks go, pending
     * events are answered) and the backing files kept open.
     */
    public void close() throws SysException {
        List<PinGuard> live;
        synchronized (pins) {
            live = List.copyOf(pins);
        }
        for (PinGuard g : live) g.closeWithLayer();
        ChangeWatch cw;
        synchronized (this) {
            closed = true;
            cw = ownChanges;
            ownChanges = null;
        }
        try {
            if (cw != null) cw.close();
        } catch (IOException e) {
            System.err.println("dmap: closing the change watch failed: " + e.getMessage());
        } finally {
            loops.close();
        }
    }

    private static void emitEvents(FileMapping m) {
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
                    ev.device = d.peer().node().toString();
                    ev.busAddress = d.busAddress();
                }
                case Segment.Fallback f -> {
                    ev.outcome = "fallback";
                    ev.refusedBy = f.refusal().reason().refuser().label();
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
