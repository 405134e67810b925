package io.directmap.fs;

import io.directmap.block.BlockDecision;
import io.directmap.block.BlockDevice;
import io.directmap.block.BlockLayer;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Refusal;
import io.directmap.mm.Segment;
import io.directmap.sys.Errno;
import io.directmap.sys.Fiemap;
import io.directmap.sys.SysException;
import io.directmap.sys.Units;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Plans a range (the generic part of device_map): read the extent map (FIEMAP), ask the page cache
 * what it holds (cachestat), cut the range at extent and cache boundaries, apply the policy, hand
 * the direct candidates to the block device (following loop devices down to their backing files),
 * and merge what comes back. What it grants is held until {@link #releaseGrants} or a refusal here
 * gives it back.
 */
final class RangePlanner {
    private static final int MAX_STACKING = 8;

    private final BlockLayer blocks;
    private final Policy policy;
    private final LoopFollower loops;

    RangePlanner(BlockLayer blocks, Policy policy, LoopFollower loops) {
        this.blocks = blocks;
        this.policy = policy;
        this.loops = loops;
    }

    /**
     * The segments of r's range of file, depth loop devices down; the extents seen are added to
     * placement (what the read_retry check compares with later).
     */
    List<Segment> plan(OpenFile file, MapRequest r, int depth, List<Extent> placement) throws IOException {
        long start = r.start(), end = r.end();
        List<Segment> out = new ArrayList<>();
        // A pin is planned by PinGuard without the flag (its buffer outlives the vma); through a vma it is refused.
        if (r.pin()) return List.of(Segments.fallback(start, end, FsReason.PIN_NOT_SUPPORTED, "DEVICE_MAP_FLAG_PIN through a vma's windows"));
        var whole = file.adapter().fileRefusal(file);
        if (whole.isPresent()) return List.of(new Segment.Fallback(start, end, whole.get()));
        if (r.write() && depth == 0 && !file.writable()) {
            return List.of(Segments.fallback(start, end, FsReason.OPENED_READ_ONLY, file.path()
                    + " was opened read-only; map it for writing (FsStack.mmapForWrite, dmap write)"));
        }
        if (r.write()) {
            var noWrite = file.adapter().writeRefusal(file);
            if (noWrite.isPresent()) return List.of(new Segment.Fallback(start, end, noWrite.get()));
            long size = file.size();
            long limit = size / io.directmap.sys.Process.PAGE_SIZE * io.directmap.sys.Process.PAGE_SIZE;
            if (end > limit) {
                // The page holding the end of the file, and anything past it, is written by the file
                // system: a device writes whole blocks, and only the file system extends a file.
                List<Segment> head = start < limit
                        ? new ArrayList<>(plan(file, new MapRequest(r.importer(), start, limit, r.flags(), r.mode()), depth, placement))
                        : new ArrayList<>();
                long from = Math.max(start, limit);
                head.add(Segments.fallback(from, end, FsReason.PAST_EOF, "the file is " + size + " bytes; "
                        + Units.range(from, end) + (from < size ? " holds its last, partial page" : " lies past its end")));
                return Segments.merge(head);
            }
        }

        List<Extent> extents;
        try {
            extents = typedExtents(file, start, end);
            placement.addAll(extents);
        } catch (SysException e) {
            if (e.errno() == Errno.EOPNOTSUPP || e.errno() == Errno.ENOTTY) {
                return List.of(Segments.fallback(start, end, FsReason.NO_FIEMAP, file.fsType() + ": " + e.shortReason()));
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
                out.add(Segments.fallback(x.start(), x.end(), x.kind().refusal(), file.fsType() + " extent " + Units.range(x.start(), x.end())));
            } else if (x.shared() && r.write()) {
                out.add(Segments.fallback(x.start(), x.end(), FsReason.SHARED_FOR_WRITE, "extent " + Units.range(x.start(), x.end())));
            } else if (cacheProblem != null) {
                out.add(Segments.fallback(x.start(), x.end(), FsReason.CACHE_STATE_UNKNOWN, cacheProblem));
            } else {
                for (PageCacheRuns.Run run : runs) {
                    long s = Math.max(x.start(), run.start()), e = Math.min(x.end(), run.end());
                    if (s >= e) continue;
                    long pages = (run.end() - run.start()) / io.directmap.sys.Process.PAGE_SIZE;
                    if (run.dirty()) {
                        out.add(Segments.fallback(s, e, FsReason.PAGE_DIRTY, pages + " dirty pages in " + Units.range(run.start(), run.end())));
                    } else if (run.cached() && r.write()) {
                        out.add(Segments.fallback(s, e, FsReason.CACHED_FOR_WRITE, pages + " cached pages in "
                                + Units.range(run.start(), run.end())));
                    } else if (policy.learner() != null && depth == 0 && !r.write()) {
                        PathLearner.Choice c = run.cached() ? policy.learner().chooseCached(e - s) : policy.learner().chooseCold(e - s);
                        if (c.direct()) {
                            place(file, r, locator, s, x.physical() + (s - x.start()), e - s, depth, out);
                        } else {
                            out.add(Segments.fallback(s, e, run.cached() ? FsReason.PAGE_CACHED : FsReason.CACHE_FASTER, c.why()));
                        }
                    } else if (run.cached() && policy.cachedPages() == Policy.CachedPages.REFUSE) {
                        out.add(Segments.fallback(s, e, FsReason.PAGE_CACHED, pages + " cached pages in " + Units.range(run.start(), run.end())));
                    } else {
                        place(file, r, locator, s, x.physical() + (s - x.start()), e - s, depth, out);
                    }
                }
            }
        }
        return Segments.merge(out);
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
                out.add(Segments.direct(fileStart, g, g.device().name()));
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
                    out.add(Segments.direct(fileStart + done, g, route));
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
            below = List.of(Segments.fallback(rd.backingOffset(), rd.backingOffset() + length, FsReason.STACKING_TOO_DEEP,
                    MAX_STACKING + " levels"));
        } else {
            try {
                Optional<Refusal> dead = loops.unreadableBelow(rd.through());
                if (dead.isEmpty() && r.write()) {
                    // Writing the backing file's blocks would skip its page cache (the loop device's, with
                    // direct I/O off, or any other reader's) and hold no lease on it: write through the loop device.
                    dead = Optional.of(new Refusal(FsReason.LOOP_BACKING_FILE, loop + " reads " + rd.backingFile()
                            + "; its blocks are written through " + loop));
                }
                OpenFile file = dead.isPresent() ? null : loops.backing(rd.through());
                if (file == null && dead.isEmpty()) dead = Optional.of(LoopFollower.notTheBackingFile(rd.through()));
                below = dead.isPresent()
                        ? List.of(new Segment.Fallback(rd.backingOffset(), rd.backingOffset() + length, dead.get()))
                        : plan(file, r.below(rd.backingOffset(), rd.backingOffset() + length), depth + 1, new ArrayList<>());
            } catch (IOException e) {
                below = List.of(Segments.fallback(rd.backingOffset(), rd.backingOffset() + length, FsReason.NO_BLOCK_DEVICE,
                        "backing file " + rd.backingFile() + ": " + e.getMessage()));
            }
        }
        for (Segment b : below) {
            long s = fileStart + (b.start() - rd.backingOffset());
            switch (b) {
                case Segment.Direct d -> out.add(new Segment.Direct(s, s + d.length(), d.peer(), d.deviceOffset(), d.busAddress(),
                        loop + " > " + d.route()));
                case Segment.Fallback f -> decideHere(rd.through(), rd.offset() + (b.start() - rd.backingOffset()), s,
                        b.length(), r, loop + " (its backing file: " + f.refusal().reason().code() + ")", out);
            }
        }
    }

    /** The typed extents of [start, end) as the adapter converts them, holes included. */
    List<Extent> typedExtents(OpenFile file, long start, long end) throws SysException {
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

    /** Direct segments become fallbacks for refusal (no lease: the blocks could change unseen). */
    List<Segment> refuseDirect(List<Segment> segments, Refusal refusal) {
        List<Segment> out = new ArrayList<>();
        for (Segment s : segments) {
            if (s instanceof Segment.Direct d) {
                blocks.release(Segments.grant(d));
                out.add(new Segment.Fallback(d.start(), d.end(), refusal));
            } else {
                out.add(s);
            }
        }
        return Segments.merge(out);
    }

    /** The proposal's contract: success for the whole range, or failure and fall back entirely. */
    List<Segment> refuseAll(List<Segment> segments) {
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
                blocks.release(Segments.grant(d));
                out.add(Segments.fallback(d.start(), d.end(), FsReason.ALL_OR_NOTHING, detail));
            } else {
                out.add(s);
            }
        }
        return Segments.merge(out);
    }

    /** Gives back what the block devices granted for the direct segments. */
    void releaseGrants(List<Segment> segments) {
        for (Segment s : segments) {
            if (s instanceof Segment.Direct d) blocks.release(Segments.grant(d));
        }
    }
}
