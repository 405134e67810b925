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
 * does closing the mapping). A read into a {@link DeviceBuffer} owns nothing; closing it gives
 * nothing back, the buffer's memory is the caller's. Either way a closed Read refuses
 * {@link #memory}.
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

    /** {@return the file read} */
    public Path file() { return file; }

    /** {@return where the read started in the file} */
    public long offset() { return offset; }

    /** {@return the bytes asked for and delivered: memory() is this long} */
    public long bytes() { return length; }

    /**
     * {@return the bytes the device read straight from the block device} Devices move whole pages,
     * so directBytes() + fallbackBytes() covers the pages the read touched (up to the end of the
     * file): it equals bytes() when offset and length are multiples of the page size.
     */
    public long directBytes() { return directBytes; }

    /** {@return the bytes the device read through the page cache (see {@link #directBytes} about whole pages)} */
    public long fallbackBytes() { return fallbackBytes; }

    /**
     * {@return how many times a part of the read (a window's share of it) was read again, never
     * delivered: because the file changed or moved under it, because its DMA failed, or because
     * its wait was interrupted}
     */
    public int retries() { return retries; }

    /**
     * {@return false when another process had the file open for writing while it was read, so
     * page-cache bytes may interleave with its writes; true when writers were held back}
     */
    public boolean coherent() { return coherent; }

    /**
     * How each range of [offset, offset + bytes) was read: in order, covering it exactly with no
     * gap, from the mappings the delivered bytes were read through (a window taken back or faulted
     * anew after the read changes nothing here). When offset and bytes are multiples of the page
     * size, the lengths of the {@link Part.Direct} parts sum to {@link #directBytes} and those of
     * the {@link Part.Fallback} parts to {@link #fallbackBytes}.
     *
     * @return the parts, unmodifiable
     */
    public List<Part> parts() { return parts; }

    /**
     * The bytes, in device memory, read-only: memory().byteSize() == bytes(). For a read into a
     * {@link DeviceBuffer}, a view of that buffer (what the buffer holds now).
     *
     * @return the bytes
     * @throws IllegalStateException when the read is closed
     */
    public MemorySegment memory() {
        if (closed) {
            throw new IllegalStateException(this + " is closed; " + (owned == null ? "read its buffer's memory()"
                    : "its device memory was given back") + ", or read again");
        }
        return memory;
    }

    /**
     * Gives back the device memory the mapping allocated for this read (a read into a
     * {@link DeviceBuffer} gives nothing back); memory() is refused after it.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
            if (owned == null) return;
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
