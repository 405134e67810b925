package io.directmap.fs;

import io.directmap.block.BlockDecision;
import io.directmap.block.BlockDevice;
import io.directmap.block.BlockLayer;
import io.directmap.block.Refusal;
import io.directmap.sys.Errno;
import io.directmap.sys.Fiemap;
import io.directmap.sys.SysException;
import io.directmap.sys.Units;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
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

    public FsLayer(BlockLayer blocks, Policy policy) {
        this.blocks = blocks;
        this.policy = policy;
    }

    public BlockLayer blocks() { return blocks; }
    public Policy policy() { return policy; }
    public MappingTracker tracker() { return tracker; }

    /** The file system's and block device's answer for request.start..request.end of file. */
    public DeviceMapping deviceMap(OpenFile file, MapRequest request) throws IOException {
        long t0 = System.nanoTime();
        long size = file.size();
        if (request.end() > roundUpPage(size)) {
            throw new InvalidRequestException(file.path() + ": range [" + request.start() + ", " + request.end()
                    + ") ends past the end of the file (" + size + " bytes)");
        }
        List<Segment> segments = plan(file, request, 0);
        if (request.allOrNothing() && segments.stream().anyMatch(s -> s instanceof Segment.Fallback)) {
            segments = refuseAll(segments);
        }
        DeviceMapping m = new DeviceMapping(ids.incrementAndGet(), file, request, segments, System.nanoTime() - t0);
        if (m.directBytes() > 0) tracker.add(m);
        emitEvents(m);
        return m;
    }

    /** Releases what deviceMap handed out: the block devices' apertures and the tracking entry. */
    public void deviceUnmap(DeviceMapping m) {
        if (!m.retire()) return;
        for (Segment s : m.segments()) {
            if (s instanceof Segment.Direct d) blocks.release(d.grant());
        }
        tracker.remove(m);
    }

    /** The typed extents of [start, end) as the adapter converts them, holes included (for explain). */
    public List<Extent> extents(OpenFile file, long start, long end) throws SysException {
        return typedExtents(file, start, end);
    }

    private List<Segment> plan(OpenFile file, MapRequest r, int depth) throws IOException {
        long start = r.start(), end = r.end();
        List<Segment> out = new ArrayList<>();
        if (r.pin()) return List.of(fallback(start, end, FsReason.PIN_NOT_SUPPORTED, "DEVICE_MAP_FLAG_PIN asked"));
        if (r.write()) return List.of(fallback(start, end, FsReason.WRITE_NOT_SUPPORTED, "DEVICE_MAP_FLAG_WRITE asked"));
        var whole = file.adapter().fileRefusal(file);
        if (whole.isPresent()) return List.of(new Segment.Fallback(start, end, whole.get()));

        List<Extent> extents;
        try {
            extents = typedExtents(file, start, end);
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
            try (OpenFile backing = OpenFile.open(rd.backingFile())) {
                below = plan(backing, new MapRequest(r.importer(), rd.backingOffset(), rd.backingOffset() + length,
                        r.write(), r.atomic(), false, false), depth + 1);
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
