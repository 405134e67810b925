package io.directmap.mm;

import io.directmap.pci.Topology.Endpoint;
import java.util.EnumSet;
import java.util.Set;

/**
 * One device_map call (the proposal's device_map(vma, importer, ..., start, end, flags, ...)):
 * who asks, for which bytes of the vma, with which DEVICE_MAP_FLAG_* bits, and how it takes a
 * partial answer. {@link MapMode#ALL_OR_NOTHING} is the proposal's contract (success or fall back
 * entirely); {@link MapMode#MIXED} is direct where possible.
 */
public record MapRequest(Endpoint importer, long start, long end, Set<MapFlag> flags, MapMode mode) {
    public MapRequest {
        if (start < 0 || end < start) throw new IllegalArgumentException("bad range " + start + ".." + end);
        flags = flags.isEmpty() ? Set.of() : java.util.Collections.unmodifiableSet(EnumSet.copyOf(flags));
    }

    /** A request with no flags, direct where possible. */
    public MapRequest(Endpoint importer, long start, long end) {
        this(importer, start, end, Set.of(), MapMode.MIXED);
    }

    /** The importer wants to write through the mapping. */
    public boolean write() { return flags.contains(MapFlag.WRITE); }

    /** The importer wants to do atomic operations on the mapping. */
    public boolean atomic() { return flags.contains(MapFlag.SUPPORT_ATOMIC_OP); }

    /** The importer wants a dma_buf whose lifetime is its own. */
    public boolean pin() { return flags.contains(MapFlag.PIN); }

    /** The proposal's contract: direct for the whole range, or fall back entirely. */
    public boolean allOrNothing() { return mode == MapMode.ALL_OR_NOTHING; }

    /** The same request for [start, end) of another file with the same write and atomic needs (a loop device's backing file). */
    public MapRequest below(long start, long end) {
        Set<MapFlag> f = flags.isEmpty() ? EnumSet.noneOf(MapFlag.class) : EnumSet.copyOf(flags);
        f.remove(MapFlag.PIN);
        return new MapRequest(importer, start, end, f, MapMode.MIXED);
    }
}
