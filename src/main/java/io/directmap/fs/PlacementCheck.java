package io.directmap.fs;

import io.directmap.mm.Invalidation;
import io.directmap.mm.Segment;
import io.directmap.sys.SysException;
import java.util.List;

/**
 * The read_retry re-check of placement: are the blocks a read went to still where device_map saw
 * them? Catches what no lease holds back (defragment, balance, dedupe move blocks without write
 * access) and takes the mappings of a moved range back.
 */
final class PlacementCheck {
    private final MappingTracker tracker;
    private final RangePlanner planner;
    private final WriterGate writers;
    private final Invalidator invalidator;

    PlacementCheck(MappingTracker tracker, RangePlanner planner, WriterGate writers, Invalidator invalidator) {
        this.tracker = tracker;
        this.planner = planner;
        this.writers = writers;
        this.invalidator = invalidator;
    }

    /**
     * The read_retry check for what a lease cannot hold back (blocks moved by defragment, balance or
     * dedupe, which need no write access): is [start, end) of m still placed where it was when
     * decided? If not, every mapping overlapping the range is taken back and this returns false;
     * the caller drops what it read and faults again.
     */
    boolean verify(FileMapping m, long start, long end) throws SysException {
        if (!m.isLive()) return false;
        // While skip_invalidate (or skip_range_invalidate) is on, the checks that would take the mapping back after the fact are skipped too.
        if (io.directmap.fault.Faults.isOn(io.directmap.fault.FaultPoint.SKIP_INVALIDATE)
                || io.directmap.fault.Faults.isOn(io.directmap.fault.FaultPoint.SKIP_RANGE_INVALIDATE)) {
            return true;
        }
        if (m.coherent() && !writers.leaseStillHeld(m)) return false;
        if (m.directBytes() == 0) return m.isLive();
        List<Extent> now = planner.typedExtents(m.file(), start, end);
        String moved = null;
        for (Segment s : m.segments()) {
            if (!(s instanceof Segment.Direct)) continue;
            long a = Math.max(s.start(), start), b = Math.min(s.end(), end);
            if (a >= b) continue;
            moved = firstDifference(m.placement(), now, a, b);
            if (moved != null) break;
        }
        if (moved == null) return m.isLive();
        invalidator.invalidateLogging(m.file().path(), tracker.overlapping(m.file(), start, end),
                Invalidation.of(start, end, Invalidation.Cause.EXTENT_MOVED, moved, false));
        return false;
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
}
