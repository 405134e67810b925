package io.directmap;

import io.directmap.fs.FsStack;
import io.directmap.fs.PathLearner;
import io.directmap.fs.Policy;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.MapMode;
import io.directmap.mm.Refusal;
import io.directmap.mm.Segment;
import io.directmap.pci.Topology;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The one place where the facade names the mapping contract's own types (the mapping, its
 * segments, the refusal, the request exception, the importer's mode) and the address space's
 * factory, and turns them into the facade's. When those types move, this file changes and the
 * rest of the package does not.
 */
final class Internals {
    private Internals() {}

    /** The address space (file systems, block devices, the bus) for topology under policy. */
    static FsStack addressSpace(Topology topology, PathPolicy policy, double evictedPageNanos) {
        Policy p = switch (policy) {
            case CACHE -> new Policy(Policy.CachedPages.REFUSE);
            case DIRECT -> new Policy(Policy.CachedPages.ALLOW);
            case LEARN -> new Policy(Policy.CachedPages.REFUSE, new PathLearner(evictedPageNanos));
        };
        return FsStack.open(topology, p);
    }

    /** The importer's mode for an all-or-nothing choice. */
    static MapMode mode(boolean allOrNothing) {
        return allOrNothing ? MapMode.ALL_OR_NOTHING : MapMode.MIXED;
    }

    /** Bad input, as the rest of the project reports it: the message names the file, the range and what to do. */
    static IOException invalid(String message) {
        return new InvalidRequestException(message);
    }

    /**
     * What the mappings say about [start, end), in order: each segment that overlaps it, cut to it.
     * A part of the range that no mapping covers (its mapping was taken back meanwhile) is a
     * {@link Part.Released}.
     */
    static List<Part> parts(List<DeviceMapping> mappings, long start, long end) {
        List<Segment> segments = new ArrayList<>();
        for (DeviceMapping m : mappings) {
            for (Segment s : m.segments()) if (s.start() < end && start < s.end()) segments.add(s);
        }
        segments.sort(Comparator.comparingLong(Segment::start));
        List<Part> parts = new ArrayList<>();
        long at = start;
        for (Segment s : segments) {
            long from = Math.max(at, s.start()), to = Math.min(end, s.end());
            if (to <= from) continue;
            if (at < from) parts.add(new Part.Released(at, from));
            parts.add(part(s, from, to));
            at = to;
        }
        if (at < end) parts.add(new Part.Released(at, end));
        return List.copyOf(parts);
    }

    private static Part part(Segment s, long from, long to) {
        return switch (s) {
            case Segment.Direct d -> new Part.Direct(from, to, d.peer().node().toString(),
                    d.deviceOffset() + (from - s.start()), d.busAddress() + (from - s.start()), d.route());
            case Segment.Fallback f -> {
                Refusal r = f.refusal();
                yield new Part.Fallback(from, to, RefusedBy.valueOf(r.reason().refuser().name()), r.reason().code(),
                        r.reason().summary(), r.detail());
            }
        };
    }
}
