package io.directmap.device;

import io.directmap.mm.DeviceMapping;
import io.directmap.mm.Segment;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.OptionalLong;

/**
 * What one access left in the device: a binding of the range (one window), the mapping
 * device_map returned for it, the table entries programmed from it, and device memory holding the
 * bytes. close() lets go of the mapping (drops the entries, calls device_unmap) and frees the memory.
 */
public final class DeviceAccess implements AutoCloseable {
    private final SoftwareDevice device;
    private final Binding binding;
    private final DeviceMemory.Buffer buffer;
    private final long start, end;
    private final Binding.Read read;
    private final long dmaNanos;
    private final DeviceMapping mapping;
    private final List<IommuTable.Entry> entries;
    private boolean closed;

    DeviceAccess(SoftwareDevice device, Binding binding, DeviceMemory.Buffer buffer, long start, long end,
                 Binding.Read read, long dmaNanos) {
        this.device = device;
        this.binding = binding;
        this.buffer = buffer;
        this.start = start;
        this.end = end;
        this.read = read;
        this.dmaNanos = dmaNanos;
        // One window, read once, and nothing else reads it: the mapping live now, if any, is the one
        // the bytes were read through. The file system may have taken it back since the read
        // returned; then what the read saw is in read.segments().
        List<DeviceMapping> live = binding.liveMappings();
        this.mapping = live.isEmpty() ? null : live.getFirst();
        this.entries = mapping == null ? List.of() : device.table().entriesOf(binding.vma().address() + binding.start(),
                binding.vma().address() + binding.end());
    }

    /** {@return device memory holding bytes [start, end) of the file, read-only} */
    public MemorySegment memory() {
        return buffer.segment().asSlice(start - binding.start(), end - start).asReadOnly();
    }

    /**
     * {@return the mapping the bytes were read through, or null when the file system took it back
     * between the read and the making of this access (then {@link #segments} and
     * {@link #decisionNanos} say what is known)}
     */
    public DeviceMapping mapping() { return mapping; }

    /**
     * {@return how long the file system took to decide the mapping the bytes were read through, in
     * nanoseconds; empty when it took that mapping back before this access was made}
     */
    public OptionalLong decisionNanos() {
        return mapping == null ? OptionalLong.empty() : OptionalLong.of(mapping.decisionNanos());
    }

    /**
     * {@return the segments the bytes were read through: those of {@link #mapping}, whole (they
     * cover the page-aligned range it was asked for, past the end of the file up to the page's
     * end); or, when the file system took the mapping back before this access was made, the
     * segments the read kept ({@link Binding.Read#segments}, cut to the range read, which ends at
     * the end of the file)}
     */
    public List<Segment> segments() { return mapping == null ? read.segments() : mapping.segments(); }

    /** {@return the table entries programmed from the mapping} */
    public List<IommuTable.Entry> entries() { return entries; }

    /** {@return the binding of the range it was read through} */
    public Binding binding() { return binding; }

    /** {@return the first file offset asked for} */
    public long start() { return start; }

    /** {@return the file offset after the last one asked for} */
    public long end() { return end; }

    /** {@return the name of the device that read it} */
    public String deviceName() { return device.name(); }

    /** {@return the bytes the DMA engine moved straight from peer block devices} */
    public long directBytes() { return read.directBytes(); }

    /** {@return the bytes the DMA engine moved from the page cache} */
    public long fallbackBytes() { return read.fallbackBytes(); }

    /** {@return false when another process had the file open for writing while it was read} */
    public boolean coherent() { return read.coherent(); }

    /** {@return how long the DMA took, in nanoseconds} */
    public long dmaNanos() { return dmaNanos; }

    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
        }
        binding.close();
        buffer.close();
    }
}
