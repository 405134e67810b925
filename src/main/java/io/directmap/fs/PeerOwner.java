package io.directmap.fs;

import io.directmap.block.BlockChange;
import io.directmap.block.PeerMappings;
import io.directmap.mm.Invalidation;
import io.directmap.mm.Segment;
import io.directmap.sys.Units;

/** A block device takes back a peer mapping: the file range behind it is invalidated. */
final class PeerOwner implements PeerMappings.Owner {
    private final FileMapping m;
    private final Segment.Direct d;
    private final MappingTracker tracker;
    private final Invalidator invalidator;

    PeerOwner(FileMapping m, Segment.Direct d, MappingTracker tracker, Invalidator invalidator) {
        this.m = m;
        this.d = d;
        this.tracker = tracker;
        this.invalidator = invalidator;
    }

    @Override
    public void invalidate(io.directmap.block.BlockDevice device, long deviceStart, long deviceEnd, BlockChange change,
                           String detail) {
        if (!m.isLive()) return;
        long from = d.start() + Math.max(0, deviceStart - d.deviceOffset());
        long to = deviceEnd == Long.MAX_VALUE ? d.end() : Math.min(d.end(), d.start() + (deviceEnd - d.deviceOffset()));
        invalidator.invalidateLogging(m.file().path(), tracker.overlapping(m.file(), from, Math.max(to, from + 1)),
                Invalidation.of(from, Math.max(to, from + 1), Invalidation.Cause.BLOCK_DEVICE,
                        change.code() + ": " + detail, false));
    }

    /** The reclaim of d's window: m alone is taken back, over d's range; other mappings of the range keep their windows. */
    @Override
    public void takeBack(PeerMappings.Entry e, BlockChange change, String detail) {
        if (!m.isLive()) return;
        invalidator.invalidateLogging(m.file().path(), java.util.List.of(m),
                Invalidation.of(d.start(), d.end(), Invalidation.Cause.BLOCK_DEVICE, change.code() + ": " + detail, false));
    }

    @Override
    public String describe() {
        return m.file().path() + " " + Units.range(d.start(), d.end()) + " for " + m.importer().name();
    }
}
