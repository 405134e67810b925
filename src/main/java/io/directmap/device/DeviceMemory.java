package io.directmap.device;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A software device's own memory: off the Java heap, page aligned (so O_DIRECT can land in it),
 * taken from a fixed budget, given back on close.
 */
public final class DeviceMemory {
    private final String device;
    private final long capacity;
    private long used;

    DeviceMemory(String device, long capacity) {
        this.device = device;
        this.capacity = capacity;
    }

    /** A buffer, or null when the budget has no room (the caller says what to do). */
    synchronized Buffer allocate(long bytes) {
        if (bytes > capacity - used) return null;
        used += bytes;
        Arena arena = Arena.ofShared();
        try {
            return new Buffer(arena, arena.allocate(bytes, 4096), bytes);
        } catch (OutOfMemoryError e) {
            used -= bytes;
            arena.close();
            throw e;
        }
    }

    synchronized long free() { return capacity - used; }
    long capacity() { return capacity; }

    private synchronized void giveBack(long bytes) { used -= bytes; }

    /** One allocation; close() gives it back. */
    public final class Buffer implements AutoCloseable {
        private final Arena arena;
        private final MemorySegment segment;
        private final long bytes;
        private boolean closed;

        private Buffer(Arena arena, MemorySegment segment, long bytes) {
            this.arena = arena;
            this.segment = segment;
            this.bytes = bytes;
        }

        /** The device memory itself. */
        public MemorySegment segment() { return segment; }

        @Override
        public void close() {
            synchronized (this) {
                if (closed) return;
                closed = true;
            }
            arena.close();
            giveBack(bytes);
        }

        @Override
        public String toString() { return device + " memory " + bytes + " bytes"; }
    }
}
