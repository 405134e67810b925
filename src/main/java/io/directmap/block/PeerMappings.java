package io.directmap.block;

import io.directmap.lang.IntervalIndex;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The block device side's reverse map (the proposal's open question 3: "helpers that let block
 * devices track the files behind their peer mappings"): for each device, which device ranges are
 * handed out, and to whom. When the device changes on its own, it finds the owners of the ranges
 * concerned and asks each, once, to take its mappings back.
 */
public final class PeerMappings {
    /** Who holds a peer mapping: the file system, on behalf of a file range and an importer. */
    public interface Owner {
        /** Take back what overlaps [deviceStart, deviceEnd) of the device; returns when the importers let go. */
        void invalidate(BlockDevice device, long deviceStart, long deviceEnd, BlockChange change, String detail);

        /** "file [start, end) for importer", for reports. */
        String describe();

        /**
         * Take back the one mapping behind e and nothing else (the reclaim of its aperture window:
         * another importer's mapping of the same device range holds a window of its own); returns
         * when its importer let go. By default, what overlaps e's range.
         */
        default void takeBack(Entry e, BlockChange change, String detail) {
            invalidate(e.device(), e.start(), e.end(), change, detail);
        }

        /**
         * Whether the aperture's reclaim policy may take this owner's windows back to make room (a
         * policy, unlike a detach or a shrink): a pin's may not, as the pin holds them until its
         * last release.
         */
        default boolean reclaimable() {
            return true;
        }
    }

    /** One peer mapping: [start, end) of device, held by owner, through the aperture window at busAddress. */
    public record Entry(BlockDevice device, long start, long end, long busAddress, Owner owner) {}

    private final Map<BlockDevice, IntervalIndex<Entry>> byDevice = new IdentityHashMap<>();
    /**
     * Each device's entries by bus address: whom a reclaim asks for a window. An entry may span
     * several windows (a mapping's adjacent grants with contiguous windows are merged into one).
     */
    private final Map<BlockDevice, TreeMap<Long, Entry>> byWindow = new IdentityHashMap<>();

    public synchronized Entry register(BlockDecision.Granted g, Owner owner) {
        Entry e = new Entry(g.device(), g.offset(), g.offset() + g.length(), g.busAddress(), owner);
        byDevice.computeIfAbsent(g.device(), d -> new IntervalIndex<>()).add(e.start(), e.end(), e);
        byWindow.computeIfAbsent(g.device(), d -> new TreeMap<>()).put(e.busAddress(), e);
        return e;
    }

    public synchronized void unregister(Entry e) {
        TreeMap<Long, Entry> windows = byWindow.get(e.device());
        if (windows != null && windows.remove(e.busAddress(), e) && windows.isEmpty()) byWindow.remove(e.device());
        IntervalIndex<Entry> ranges = byDevice.get(e.device());
        if (ranges == null) return;
        ranges.remove(e.start(), e.end(), e);
        if (ranges.isEmpty()) byDevice.remove(e.device());
    }

    /** The entry whose grants hold device's aperture window at busAddress; empty while its grant is not tracked yet. */
    public synchronized Optional<Entry> holderOf(BlockDevice device, long busAddress) {
        TreeMap<Long, Entry> windows = byWindow.get(device);
        Map.Entry<Long, Entry> at = windows == null ? null : windows.floorEntry(busAddress);
        if (at == null) return Optional.empty();
        Entry e = at.getValue();
        return busAddress < e.busAddress() + (e.end() - e.start()) ? Optional.of(e) : Optional.empty();
    }

    /** The entries of device that overlap [start, end). */
    public synchronized List<Entry> overlapping(BlockDevice device, long start, long end) {
        IntervalIndex<Entry> ranges = byDevice.get(device);
        if (ranges == null) return List.of();
        return ranges.overlapping(start, end);
    }

    /** Devices that have peer mappings now. */
    public synchronized List<BlockDevice> devices() {
        return List.copyOf(byDevice.keySet());
    }

    public synchronized int size() {
        return byDevice.values().stream().mapToInt(IntervalIndex::size).sum();
    }

    /** Asks every owner of an overlapping range, once each, to take it back; returns how many owners were asked. */
    public int invalidate(BlockDevice device, long start, long end, BlockChange change, String detail) {
        Map<Owner, Boolean> owners = new IdentityHashMap<>();
        for (Entry e : overlapping(device, start, end)) owners.put(e.owner(), true);
        for (Owner o : owners.keySet()) o.invalidate(device, start, end, change, detail);
        return owners.size();
    }
}
