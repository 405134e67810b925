package io.directmap;

import io.directmap.device.DmaInFlightException;
import io.directmap.fs.FsStack;
import io.directmap.fs.PathLearner;
import io.directmap.fs.Policy;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.MapMode;
import io.directmap.mm.Refusal;
import io.directmap.mm.Segment;
import io.directmap.pci.Topology;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The one place where the facade names the mapping contract's own types (the segments a read was
 * read through, the refusal, the request exception, the importer's mode) and the address space's
 * factory, and turns them into the facade's. When those types move, this file changes and the
 * rest of the package does not.
 */
final class Internals {
    private Internals() {}

    /**
     * The address space (file systems, block devices, the bus) for topology under policy; rangeEvents
     * false holds writers back with leases only (whole-file invalidation).
     */
    static FsStack addressSpace(Topology topology, PathPolicy policy, double evictedPageNanos, boolean rangeEvents) {
        Policy p = switch (policy) {
            case CACHE -> new Policy(Policy.CachedPages.REFUSE);
            case DIRECT -> new Policy(Policy.CachedPages.ALLOW);
            case LEARN -> new Policy(Policy.CachedPages.REFUSE, new PathLearner(evictedPageNanos));
        };
        return FsStack.open(topology, p.withRangeEvents(rangeEvents));
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
     * A failure of the layers below (io_uring's EIO, a DMA that ended early) as the facade's caller
     * sees it: an IOException whose message is what, then the failure's message, with the failure
     * as its cause. Bad input (its message names the file and what to give already) and a
     * {@link DmaInFlightException} (its type tells the caller memory was set aside) are returned as
     * they are.
     */
    static IOException fromBelow(String what, IOException e) {
        if (e instanceof InvalidRequestException || e instanceof DmaInFlightException) return e;
        return new IOException(what + ": " + e.getMessage(), e);
    }

    /**
     * How each byte of [start, end) came, in order: each of the segments a read was read through
     * ({@link io.directmap.device.Binding.Read#segments}, in order, covering the read) that overlaps
     * [start, end), cut to it. The parts cover [start, end) exactly, with no gap; a read whose
     * segments leave a gap there broke the mapping contract, and is an IllegalStateException
     * naming the gap.
     */
    static List<Part> parts(List<Segment> segments, long start, long end) {
        List<Part> parts = new ArrayList<>();
        long at = start;
        for (Segment s : segments) {
            long from = Math.max(start, s.start()), to = Math.min(end, s.end());
            if (to <= from) continue;
            if (from != at) throw gap(segments, at, from, start, end);
            parts.add(part(s, from, to));
            at = to;
        }
        if (at < end) throw gap(segments, at, end, start, end);
        return List.copyOf(parts);
    }

    private static IllegalStateException gap(List<Segment> segments, long at, long next, long start, long end) {
        return new IllegalStateException("the segments a read was read through do not cover [" + start + ", " + end
                + ") in order: " + (next > at ? "nothing covers [" + at + ", " + next + ")" : "they go back to " + next
                + " after " + at) + "; segments " + segments);
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
