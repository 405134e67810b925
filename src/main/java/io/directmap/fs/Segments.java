package io.directmap.fs;

import io.directmap.block.BlockDecision;
import io.directmap.block.BlockDevice;
import io.directmap.mm.Refusal;
import io.directmap.mm.Segment;
import java.util.ArrayList;
import java.util.List;

/** Merging a plan's segments, and the refusal-with-detail shorthand every planning step uses. */
final class Segments {
    private Segments() {}

    /**
     * Adjacent segments with the same outcome become one (contiguous device ranges and bus windows,
     * equal refusals): two grants whose aperture windows are apart stay two, each with its bus address.
     */
    static List<Segment> merge(List<Segment> in) {
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
                && x.peer() == y.peer() && x.deviceOffset() + x.length() == y.deviceOffset()
                && x.busAddress() + x.length() == y.busAddress() && x.route().equals(y.route())) {
            return new Segment.Direct(x.start(), y.end(), x.peer(), x.deviceOffset(), x.busAddress(), x.route());
        }
        if (a instanceof Segment.Fallback x && b instanceof Segment.Fallback y && x.refusal().equals(y.refusal())) {
            return new Segment.Fallback(x.start(), y.end(), x.refusal());
        }
        return null;
    }

    /** The direct segment for what a block device granted, from fileStart: as long as the grant. */
    static Segment.Direct direct(long fileStart, BlockDecision.Granted g, String route) {
        return new Segment.Direct(fileStart, fileStart + g.length(), g.device(), g.offset(), g.busAddress(), route);
    }

    /**
     * The block device's grant behind a direct segment this file system made (a segment is exactly
     * as long as its grant, and merging adds both). A segment read from anything but a block device
     * is not one of ours: refused with the segment named.
     */
    static BlockDecision.Granted grant(Segment.Direct d) {
        return new BlockDecision.Granted(device(d), d.deviceOffset(), d.length(), d.busAddress());
    }

    /** The block device a direct segment this file system made reads from. */
    static BlockDevice device(Segment.Direct d) {
        if (d.peer() instanceof BlockDevice dev) return dev;
        throw new IllegalArgumentException("direct segment " + d + " reads from " + d.peer().name()
                + ", which is not a block device: it was not made by this file system");
    }

    static Segment.Fallback fallback(long start, long end, FsReason reason, String detail) {
        return new Segment.Fallback(start, end, new Refusal(reason, detail));
    }
}
