package io.directmap.fs;

import io.directmap.block.BlockDecision;
import io.directmap.mm.Refusal;
import java.util.ArrayList;
import java.util.List;

/** Merging a plan's segments, and the refusal-with-detail shorthand every planning step uses. */
final class Segments {
    private Segments() {}

    /** Adjacent segments with the same outcome become one (contiguous device ranges, equal refusals). */
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
                && x.device() == y.device() && x.deviceOffset() + x.length() == y.deviceOffset() && x.route().equals(y.route())) {
            var g = new BlockDecision.Granted(x.device(), x.deviceOffset(), x.grant().length() + y.grant().length(), x.busAddress());
            return new Segment.Direct(x.start(), y.end(), g, x.route());
        }
        if (a instanceof Segment.Fallback x && b instanceof Segment.Fallback y && x.refusal().equals(y.refusal())) {
            return new Segment.Fallback(x.start(), y.end(), x.refusal());
        }
        return null;
    }

    static Segment.Fallback fallback(long start, long end, FsReason reason, String detail) {
        return new Segment.Fallback(start, end, new Refusal(reason, detail));
    }
}
