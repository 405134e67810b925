package io.directmap;

import io.directmap.device.DeviceMemory;
import java.lang.foreign.MemorySegment;

/**
 * Device memory that the caller allocated ({@link Device#allocate}) and reads into, again and
 * again, as cuFileRead takes a device pointer: {@link FileMapping#read(long, long, DeviceBuffer)}.
 * Closing it waits for the reads still writing into it, then gives the memory back.
 */
public final class DeviceBuffer implements AutoCloseable {
    private final Device device;
    private final DeviceMemory.Buffer buffer;
    private final long size;
    private final InFlight writers;

    DeviceBuffer(Device device, DeviceMemory.Buffer buffer, long size) {
        this.device = device;
        this.buffer = buffer;
        this.size = size;
        this.writers = new InFlight("buffer of " + size + " bytes on " + device.name(),
                "allocate another with " + device.name() + ".allocate(bytes)");
    }

    /** {@return the device this memory belongs to} */
    public Device device() { return device; }

    /** {@return its size in bytes} */
    public long size() { return size; }

    /**
     * The memory, read-only: what the last read left there.
     *
     * @return the memory
     * @throws IllegalStateException when the buffer is closed
     */
    public MemorySegment memory() {
        if (writers.isClosed()) throw new IllegalStateException(this + " is closed; its memory was given back");
        return buffer.segment().asSlice(0, size).asReadOnly();
    }

    /** A read starts writing here (IllegalStateException once closed). */
    MemorySegment beginWrite() {
        writers.enter();
        return buffer.segment();
    }

    void endWrite() {
        writers.exit();
    }

    /**
     * Waits for the reads writing into it, then gives the memory back to the device. A second or
     * concurrent close returns once the first has given the memory back.
     */
    @Override
    public void close() {
        if (!writers.close()) return;
        try {
            buffer.close();
        } finally {
            try {
                device.forget(this);
            } finally {
                writers.closed();
            }
        }
    }

    @Override
    public String toString() {
        return "buffer of " + size + " bytes on " + device.name();
    }
}
