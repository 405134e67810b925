package io.directmap.device;

import io.directmap.fs.DeviceMapping;
import io.directmap.fs.Segment;
import io.directmap.mm.Vma;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * What one access left in the device: the mapping device_map returned, the table entries
 * programmed from it, and device memory holding the bytes. close() drops the entries,
 * calls device_unmap and frees the memory.
 */
public final class DeviceAccess implements AutoCloseable {
    private final SoftwareDevice device;
    private final Vma vma;
    private final DeviceMapping mapping;
    private final List<IommuTable.Entry> entries;
    private final DeviceMemory.Buffer buffer;
    private final long start, end;
    private final long dmaNanos;
    private boolean closed;

    DeviceAccess(SoftwareDevice device, Vma vma, DeviceMapping mapping, List<IommuTable.Entry> entries,
                 DeviceMemory.Buffer buffer, long start, long end, long dmaNanos) {
        this.device = device;
        this.vma = vma;
        this.mapping = mapping;
        this.entries = entries;
        this.buffer = buffer;
        this.start = start;
        this.end = end;
        this.dmaNanos = dmaNanos;
    }

    /** Device memory holding bytes [start, end) of the file, read-only. */
    public MemorySegment memory() {
        long mapStart = mapping.start();
        return buffer.segment().asSlice(start - mapStart, end - start).asReadOnly();
    }

    public DeviceMapping mapping() { return mapping; }
    public List<Segment> segments() { return mapping.segments(); }
    public List<IommuTable.Entry> entries() { return entries; }
    public long start() { return start; }
    public long end() { return end; }
    public String deviceName() { return device.name(); }

    /** Bytes moved by the DMA engine from peer block devices and from the page cache. */
    public long directBytes() { return mapping.directBytes(); }
    public long fallbackBytes() { return mapping.fallbackBytes(); }
    public long dmaNanos() { return dmaNanos; }

    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
        }
        device.release(this, vma, mapping, entries, buffer);
    }
}
