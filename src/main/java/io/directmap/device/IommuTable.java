package io.directmap.device;

import io.directmap.lang.IntervalIndex;
import io.directmap.mm.Transfer;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The importer's IOMMU-like table: from the virtual addresses of the vma it mirrors to what the
 * DMA engine reaches for them: a peer (a block device today) at a bus address (step 4a), or host page-cache
 * pages (step 4b).
 */
public final class IommuTable {
    /** Where an entry's bytes come from. */
    public sealed interface Target {
        /**
         * A peer's aperture (step 4a): busAddress reaches device at deviceOffset.
         *
         * @param device the peer the bytes are read from
         * @param deviceOffset where on it
         * @param busAddress the proposal's dma_addr_t for that offset
         */
        record Peer(io.directmap.mm.Peer device, long deviceOffset, long busAddress) implements Target {}

        /**
         * Host memory: pages of the page cache, reached through the vma. way says whether the file
         * system expected them cached or cold (what the learning policy measures), or null.
         *
         * @param pages the faulted pages (step 4b)
         * @param way how the refuser expected them to travel, or null when it did not say
         */
        record HostPages(MemorySegment pages, Transfer way) implements Target {}

        /**
         * The file, through its owner's write path (step 4b for WRITE): the entry's bytes are
         * stored at file offset (virtual address - vma address) with {@code vma.ops().store}, a
         * pwrite through the page cache for a file.
         *
         * @param vma the mapping whose owner writes them
         */
        record FileStore(io.directmap.mm.Vma vma) implements Target {}
    }

    /**
     * One translation: virtualAddress..+length is backed by target.
     *
     * @param virtualAddress where it starts in the vma, as the device mirrors it
     * @param length how many bytes it covers
     * @param target what the bytes are read from
     * @param memoryOffset where they land in device memory
     */
    public record Entry(long virtualAddress, long length, Target target, long memoryOffset) {}

    /** At most one entry per virtual address it starts at (programming an address again replaces it). */
    private final IntervalIndex<Entry> entries = new IntervalIndex<>();

    /** An empty table: each importer makes its own ({@link SoftwareDevice}); others read it. */
    IommuTable() {}

    /**
     * The parts of entries inside [vaStart, vaEnd), each with its target narrowed to the part and
     * its memory offset counted from vaStart: what a DMA of that range moves.
     */
    static List<Entry> window(List<Entry> entries, long vaStart, long vaEnd) {
        return window(entries, vaStart, vaEnd, 0);
    }

    /** As {@link #window(List, long, long)}, with memory offsets counted from memoryBase. */
    static List<Entry> window(List<Entry> entries, long vaStart, long vaEnd, long memoryBase) {
        List<Entry> out = new java.util.ArrayList<>();
        for (Entry e : entries) {
            long a = Math.max(vaStart, e.virtualAddress()), b = Math.min(vaEnd, e.virtualAddress() + e.length());
            if (a >= b) continue;
            long skip = a - e.virtualAddress();
            Target t = switch (e.target()) {
                case Target.Peer p -> new Target.Peer(p.device(), p.deviceOffset() + skip, p.busAddress() + skip);
                case Target.HostPages h -> new Target.HostPages(h.pages().asSlice(skip, b - a), h.way());
                case Target.FileStore f -> f;
            };
            out.add(new Entry(a, b - a, t, memoryBase + (a - vaStart)));
        }
        return out;
    }

    synchronized void program(List<Entry> batch) {
        for (Entry e : batch) {
            entries.removeAt(e.virtualAddress());
            entries.add(e.virtualAddress(), e.virtualAddress() + e.length(), e);
        }
    }

    synchronized void drop(List<Entry> batch) {
        for (Entry e : batch) entries.remove(e.virtualAddress(), e.virtualAddress() + e.length(), e);
    }

    /** The entries programmed for [vaStart, vaEnd), in address order. */
    synchronized List<Entry> entriesOf(long vaStart, long vaEnd) {
        return List.copyOf(entries.startingIn(vaStart, vaEnd));
    }

    /**
     * The entry that translates va, as the device's IOMMU would.
     *
     * @param va a virtual address of a mirrored vma
     * @return the entry that covers it, or null when none does
     */
    public synchronized Entry translate(long va) {
        return entries.floorContaining(va);
    }

    /** {@return how many entries are programmed} */
    public synchronized int size() {
        return entries.size();
    }
}
