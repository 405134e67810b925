package io.directmap;

import io.directmap.device.DeviceMemory;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;

/**
 * What one read of a {@link FileMapping} left in device memory, and how the bytes got there: how
 * many went direct, how many through the page cache, and for each range who refused the direct
 * path and why ({@link #parts}).
 *
 * <p>A read into memory the mapping allocated owns that memory: {@link #close} gives it back (so
 * does closing the mapping). A read into a {@link DeviceBuffer} owns nothing; closing it does nothing.
 */
public final class Read implements AutoCloseable {
    private final Path file;
    private final long offset, length;
    private final long directBytes, fallbackBytes;
    private final int retries;
    private final boolean coherent;
    private final List<Part> parts;
    private final MemorySegment memory;
    private final DeviceMemory.Buffer owned;
    private final FileMapping mapping;
    private volatile boolean closed;

    Read(Path file, long offset, long length, long directBytes, long fallbackBytes, int retries, boolean coherent,
         List<Part> parts, MemorySegment memory, DeviceMemory.Buffer owned, FileMapping mapping) {
        this.file = file;
        this.offset = offset;
        this.length = length;
        this.directBytes = directBytes;
        this.fallbackBytes = fallbackBytes;
        this.retries = retries;
        this.coherent = coherent;
        this.parts = parts;
        this.memory = memory;
        this.owned = owned;
        this.mapping = mapping;
    }

    /** The file read. */
    public Path file() { return file; }

    /** Where the read started in the file. */
    public long offset() { return offset; }

    /** The bytes asked for and delivered: memory() is this long. */
    public long bytes() { return length; }

    /**
     * Bytes the device read straight from the block device. Devices move whole pages, so
     * directBytes() + fallbackBytes() covers the pages the read touched (up to the end of the file):
     * it equals bytes() when offset and length are multiples of the page size.
     */
    public long directBytes() { return directBytes; }

    /** Bytes the device read through the page cache (see {@link #directBytes} about whole pages). */
    public long fallbackBytes() { return fallbackBytes; }

    /** How many times a part of the read was read again because the file changed under it (never delivered stale). */
    public int retries() { return retries; }

    /**
     * False when another process had the file open for writing while it was read, so page-cache
     * bytes may interleave with its writes; true when writers were held back.
     */
    public boolean coherent() { return coherent; }

    /**
     * How each range of [offset, offset + bytes) was read: in order, covering it exactly with no
     * gap, from the mappings the delivered bytes were read through (a window taken back or faulted
     * anew after the read changes nothing here). When offset and bytes are multiples of the page
     * size, the lengths of the {@link Part.Direct} parts sum to {@link #directBytes} and those of
     * the {@link Part.Fallback} parts to {@link #fallbackBytes}.
     */
    public List<Part> parts() { return parts; }

    /** The bytes, in device memory, read-only: memory().byteSize() == bytes(). */
    public MemorySegment memory() {
        if (closed) throw new IllegalStateException(this + " is closed; its device memory was given back");
        return memory;
    }

    /** Gives back the device memory the mapping allocated for this read; memory() is gone after it. */
    @Override
    public void close() {
        synchronized (this) {
            if (owned == null || closed) return;
            closed = true;
        }
        try {
            owned.close();
        } finally {
            mapping.forget(this);
        }
    }

    @Override
    public String toString() {
        return "read of " + file + " [" + offset + ", " + (offset + length) + ")";
    }
}
