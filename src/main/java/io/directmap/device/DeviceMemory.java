package io.directmap.device;

import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import io.directmap.lang.Closer;
import io.directmap.sys.FileHandle;
import io.directmap.sys.Memfd;
import io.directmap.sys.Mmap;
import io.directmap.sys.SysException;
import io.directmap.sys.Units;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * A software device's own memory: off the Java heap, page aligned (so O_DIRECT can land in it),
 * taken from a fixed budget, given back on close.
 *
 * <p>Memory the kernel may still write into is set aside, never freed: when the DMA engine could
 * not wait for its reads (see {@link DmaInFlightException}) it calls {@link #setAside}, and the
 * buffer holding that memory then stays allocated and counted as used when it is closed, until the
 * process exits. Freeing it would let a late read land in memory given to someone else.
 *
 * <p>Memory a device exports ({@link #allocateExported}) needs a descriptor that others can map
 * and read: it is a memfd, mapped shared and writable here. Other allocations stay plain arena
 * memory.
 */
public final class DeviceMemory {
    private static final int ENOMEM = 12;

    private final String device;
    private final long capacity;
    private long used;                                   // guarded by this
    private final List<Buffer> live = new ArrayList<>(); // guarded by this
    private volatile long setAsideBytes;

    DeviceMemory(String device, long capacity) {
        this.device = device;
        this.capacity = capacity;
    }

    /**
     * A buffer, or null when the budget has no room (the caller says what to do). When the host
     * cannot give the memory (fault point DEVICE_ALLOC_FAIL fails it as malloc would) it fails with
     * ENOMEM and takes nothing from the budget.
     */
    synchronized Buffer allocate(long bytes) throws SysException {
        if (bytes > capacity - used) return null;
        used += bytes;
        Arena arena = Arena.ofShared();
        try {
            if (Faults.fire(FaultPoint.DEVICE_ALLOC_FAIL)) throw new OutOfMemoryError("Unable to allocate " + bytes + " bytes");
            Buffer b = new Buffer(arena, arena.allocate(bytes, 4096), bytes, null);
            live.add(b);
            return b;
        } catch (OutOfMemoryError e) {
            used -= bytes;
            arena.close();
            SysException x = new SysException("allocate device memory", device + ", " + Units.bytes(bytes), ENOMEM,
                    "the host has no memory to back " + device + "'s memory now; map a smaller range, or free memory on the host and retry");
            x.initCause(e);
            throw x;
        }
    }

    /**
     * A buffer backed by a memfd called name (its descriptor: {@link Buffer#descriptor()}), or null
     * when the budget has no room. Fails as {@link #allocate} does, and with the memfd call's errno;
     * nothing is left open or taken from the budget when it fails.
     */
    synchronized Buffer allocateExported(String name, long bytes) throws SysException {
        if (bytes > capacity - used) return null;
        used += bytes;
        FileHandle fd = null;
        Arena arena = Arena.ofShared();
        try {
            if (Faults.fire(FaultPoint.DEVICE_ALLOC_FAIL)) {
                throw new SysException("memfd_create", name + ", " + Units.bytes(bytes), ENOMEM,
                        "the host has no memory to back " + device + "'s exported memory now (fault point device_alloc_fail)");
            }
            fd = Memfd.create(name, bytes);
            Buffer b = new Buffer(arena, Mmap.mapSharedWritable(fd, bytes, arena), bytes, fd);
            live.add(b);
            return b;
        } catch (SysException | RuntimeException | Error e) {
            used -= bytes;
            arena.close();
            if (fd != null) {
                try {
                    fd.close();
                } catch (SysException c) {
                    e.addSuppressed(c);
                }
            }
            throw e;
        }
    }

    synchronized long free() { return capacity - used; }
    long capacity() { return capacity; }

    /** Bytes set aside because the kernel may still write them; they come back only when the process exits. */
    long setAsideBytes() { return setAsideBytes; }

    /**
     * Marks every live buffer that overlaps region as written by the kernel after the DMA ended: it
     * is never freed. Memory that is not this device's is left to the caller, who was told by the
     * exception.
     */
    synchronized void setAside(MemorySegment region) {
        for (Buffer b : live) {
            if (!b.setAside && overlaps(b.segment, region)) {
                b.setAside = true;
                setAsideBytes += b.bytes;
            }
        }
    }

    /** True when region overlaps memory that was set aside: no new DMA may go there. */
    boolean isSetAside(MemorySegment region) {
        if (setAsideBytes == 0) return false;
        synchronized (this) {
            for (Buffer b : live) if (b.setAside && overlaps(b.segment, region)) return true;
            return false;
        }
    }

    private static boolean overlaps(MemorySegment a, MemorySegment b) {
        return a.address() < b.address() + b.byteSize() && b.address() < a.address() + a.byteSize();
    }

    /** One allocation; close() gives it back, unless it was set aside. */
    public final class Buffer implements AutoCloseable {
        private final Arena arena;
        private final MemorySegment segment;
        private final long bytes;
        private final FileHandle descriptor;   // the memfd of exported memory, else null
        private boolean closed;
        private boolean setAside;  // guarded by the DeviceMemory

        private Buffer(Arena arena, MemorySegment segment, long bytes, FileHandle descriptor) {
            this.arena = arena;
            this.segment = segment;
            this.bytes = bytes;
            this.descriptor = descriptor;
        }

        /** {@return the device memory itself} */
        public MemorySegment segment() { return segment; }

        /** The memfd behind exported memory (null for memory that is not exported). */
        FileHandle descriptor() { return descriptor; }

        @Override
        public void close() {
            synchronized (this) {
                if (closed) return;
                closed = true;
            }
            synchronized (DeviceMemory.this) {
                // The kernel may still write here: keep it allocated (and counted) for good.
                if (setAside) return;
                live.remove(this);
                used -= bytes;
            }
            if (descriptor == null) {
                arena.close();
                return;
            }
            // Exported: truncating frees the pages even where another mapping of the device file
            // still holds them (a read of it then fails, it never sees memory given to another).
            Closer<SysException> closer = Closer.keeping(SysException.class);
            closer.run(() -> Memfd.resize(descriptor, 0));
            closer.run(arena::close);
            closer.run(descriptor::close);
            if (closer.failure() != null) {
                throw new IllegalStateException("freeing " + device + "'s exported memory (" + descriptor.path() + ", "
                        + Units.bytes(bytes) + ") failed; its budget was given back", closer.failure());
            }
        }

        @Override
        public String toString() { return device + " memory " + bytes + " bytes"; }
    }
}
