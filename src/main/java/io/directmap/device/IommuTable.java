package io.directmap.device;

import io.directmap.block.BlockDevice;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The importer's IOMMU-like table: from the virtual addresses of the vma it mirrors to what the
 * DMA engine reaches for them: a peer block device at a bus address (step 4a), or host page-cache
 * pages (step 4b).
 */
public final class IommuTable {
    /** Where an entry's bytes come from. */
    public sealed interface Target {
        /** A peer's aperture: busAddress reaches device at deviceOffset. */
        record Peer(BlockDevice device, long deviceOffset, long busAddress) implements Target {}

        /** Host memory: pages of the page cache, reached through the vma. */
        record HostPages(MemorySegment pages) implements Target {}
    }

    /** virtualAddress..+length is backed by target; memoryOffset is where it lands in device memory. */
    public record Entry(long virtualAddress, long length, Target target, long memoryOffset) {}

    private final TreeMap<Long, Entry> entries = new TreeMap<>();

    synchronized void program(List<Entry> batch) {
        for (Entry e : batch) entries.put(e.virtualAddress(), e);
    }

    synchronized void drop(List<Entry> batch) {
        for (Entry e : batch) entries.remove(e.virtualAddress(), e);
    }

    /** The entry that translates va, or null. */
    public synchronized Entry translate(long va) {
        Map.Entry<Long, Entry> f = entries.floorEntry(va);
        return f != null && va < f.getKey() + f.getValue().length() ? f.getValue() : null;
    }

    public synchronized int size() {
        return entries.size();
    }
}
