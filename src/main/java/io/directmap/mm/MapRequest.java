package io.directmap.mm;

import io.directmap.pci.Topology.Endpoint;
import java.util.EnumSet;
import java.util.Set;

/**
 * One device_map call (the proposal's device_map(vma, importer, ..., start, end, flags, ...)):
 * who asks, for which bytes of the vma, with which DEVICE_MAP_FLAG_* bits, and how it takes a
 * partial answer. {@link MapMode#ALL_OR_NOTHING} is the proposal's contract (success or fall back
 * entirely); {@link MapMode#MIXED} is direct where possible.
 *
 * @param importer the device that asks (an endpoint on the bus)
 * @param start the first byte of the vma (a file offset) it wants
 * @param end the byte after the last one
 * @param flags the DEVICE_MAP_FLAG_* bits
 * @param mode how it takes a partial answer
 */
public record MapRequest(Endpoint importer, long start, long end, Set<MapFlag> flags, MapMode mode) {
    /**
     * A request; flags are copied.
     *
     * @throws IllegalArgumentException when start is negative or end is before start
     */
    public MapRequest {
        if (start < 0 || end < start) throw new IllegalArgumentException("bad range " + start + ".." + end);
        flags = flags.isEmpty() ? Set.of() : java.util.Collections.unmodifiableSet(EnumSet.copyOf(flags));
    }

    /**
     * A request with no flags, direct where possible.
     *
     * @param importer the device that asks
     * @param start the first byte of the vma it wants
     * @param end the byte after the last one
     */
    public MapRequest(Endpoint importer, long start, long end) {
        this(importer, start, end, Set.of(), MapMode.MIXED);
    }

    /** {@return whether the importer wants to write through the mapping} */
    public boolean write() { return flags.contains(MapFlag.WRITE); }

    /** {@return whether the importer wants to do atomic operations on the mapping} */
    public boolean atomic() { return flags.contains(MapFlag.SUPPORT_ATOMIC_OP); }

    /** {@return whether the importer wants a dma_buf whose lifetime is its own} */
    public boolean pin() { return flags.contains(MapFlag.PIN); }

    /** {@return whether it is the proposal's contract: direct for the whole range, or fall back entirely} */
    public boolean allOrNothing() { return mode == MapMode.ALL_OR_NOTHING; }

    /**
     * The same request for [start, end) of another file with the same write and atomic needs (a
     * loop device's backing file), without PIN, direct where possible.
     *
     * @param start the first byte of the other file
     * @param end the byte after the last one
     * @return the request to pass down
     */
    public MapRequest below(long start, long end) {
        Set<MapFlag> f = flags.isEmpty() ? EnumSet.noneOf(MapFlag.class) : EnumSet.copyOf(flags);
        f.remove(MapFlag.PIN);
        return new MapRequest(importer, start, end, f, MapMode.MIXED);
    }
}
