package io.directmap.device;

import io.directmap.mm.AddressSpace;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MappedFile;
import io.directmap.mm.Peer;
import io.directmap.mm.VmOperations;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.sys.FileHandle;
import io.directmap.sys.SysException;
import io.directmap.sys.Units;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * Memory a software device exports as a device file, the proposal's device-to-device case. The
 * memory is a memfd: the exporter writes it through {@link #memory()}, a program maps the device
 * file ({@link #node()}, /proc/PID/fd/N, or {@link #mmap}) and gets a vma whose vm operations are
 * the exporter's ({@link #ops()}), and an importer that binds that vma is given peer-to-peer
 * mappings of it (read through the memfd, at the exporter's bus addresses) or, when the exporter
 * refuses, bounces the bytes through host memory (the vma's pages).
 *
 * <p>Freeing ({@link #free}, {@link #close}, or the exporting device's close) follows the proposal's
 * rule that the exporter may take its mappings back at any time: device_map is stopped, every peer
 * mapping of the memory is invalidated through its vma's owner and the exporter waits until each
 * importer has let go (and until no DMA reads the memfd), and only then is the memory freed (the
 * memfd truncated to 0, so even a vma still mapping it holds no page of it). A read through such a
 * vma afterwards fails, naming the device file: it never sees memory given to someone else.
 */
public final class ExportedMemory implements AutoCloseable {
    private final SoftwareDevice device;
    private final DeviceMemory.Buffer buffer;
    private final Path node;
    private final MemoryPeer peer;
    private final ExporterVmOperations ops;
    private boolean freeing, freed;   // guarded by this

    ExportedMemory(SoftwareDevice device, DeviceMemory.Buffer buffer, Topology topology, ExportAperture aperture)
            throws SysException {
        this.device = device;
        this.buffer = buffer;
        this.node = Path.of("/proc/" + ProcessHandle.current().pid() + "/fd/" + buffer.descriptor().fd());
        this.peer = new MemoryPeer(device.name(), node, buffer.descriptor());
        this.ops = new ExporterVmOperations(this, topology, device.endpoint(), aperture);
    }

    /** {@return the exporting device} */
    public SoftwareDevice device() { return device; }

    /** {@return the device file: /proc/PID/fd/N of the memfd, a path any process may open and mmap} */
    public Path node() { return node; }

    /** {@return the size, a whole number of pages} */
    public long byteSize() { return buffer.segment().byteSize(); }

    /**
     * The memory itself, as the exporter sees it (writable).
     *
     * @return the memory
     * @throws IllegalStateException once it was freed
     */
    public MemorySegment memory() {
        synchronized (this) {
            if (freed) throw new IllegalStateException(this + " was freed");
        }
        return buffer.segment();
    }

    /** {@return the vm operations a mapping of the device file gets: the exporter's device_map and device_unmap} */
    public VmOperations ops() { return ops; }

    /** What the importer's DMA engine reads a peer mapping from. */
    Peer peer() { return peer; }

    /**
     * Opens the device file for reading and maps it into mm with the exporter's vm operations (what
     * a program does with open(2) and mmap(2) of a driver's device file). The vma owns the
     * descriptor it opened; munmap gives it back.
     *
     * @param mm the address space to map it into
     * @return the vma, whose vm operations are {@link #ops()}
     * @throws IOException when the memory is being freed or was (the message says so), or the device file cannot be opened
     */
    public Vma mmap(AddressSpace mm) throws IOException {
        synchronized (this) {
            if (freeing) throw new IOException(node + ": " + this + " is freed; export memory again to map it");
        }
        FileHandle h = FileHandle.openRead(node);
        return mm.mmap(new DeviceFile(node, h, byteSize()), ops);
    }

    /** {@return the peer mappings of this memory live now} */
    public int liveMappings() { return ops.liveMappings(); }

    /** {@return the peer mappings taken back from an importer that did not let go} */
    public long revokedMappings() { return ops.revoked(); }

    /** {@return whether the memory was freed (every importer let go first)} */
    public synchronized boolean isFreed() { return freed; }

    /**
     * The exporter moves [start, end) of its memory: takes back every peer mapping that overlaps
     * it and returns once their importers have let go; they fault again on their next read.
     *
     * @param start the first byte of the memory that moves
     * @param end the byte after the last
     * @param why what moves it, for the importers' invalidation detail
     * @return how many mappings were taken back
     */
    public int invalidate(long start, long end, String why) {
        return ops.takeBack(start, end, Invalidation.Cause.RECLAIMED, device.name() + " moves " + Units.range(start, end)
                + " of " + node + ": " + why);
    }

    /**
     * Frees the memory once every importer has let go of it (see the class comment), and gives it
     * back to the device's budget. Idempotent; a second caller waits for the first.
     *
     * @throws IOException when closing the memfd failed (the memory is freed all the same)
     */
    public void free() throws IOException {
        synchronized (this) {
            if (freeing) {
                io.directmap.lang.Monitors.awaitUninterruptibly(this, () -> freed);
                return;
            }
            freeing = true;
        }
        String why = device.name() + " freed its exported memory " + node + " (" + Units.bytes(byteSize()) + ")";
        Throwable failure = null;
        try {
            ops.stop(why);
            ops.takeBack(0, Long.MAX_VALUE, Invalidation.Cause.RECLAIMED, why);
        } catch (RuntimeException | Error e) {
            failure = e;
        }
        // Whatever happened above, no DMA reads the memfd past this point.
        peer.closeAndAwaitReaders();
        try {
            buffer.close();
        } catch (java.io.UncheckedIOException e) {
            if (failure == null) failure = e.getCause(); else failure.addSuppressed(e.getCause());
        } finally {
            device.forget(this);
            synchronized (this) {
                freed = true;
                notifyAll();
            }
        }
        switch (failure) {
            case null -> { }
            case IOException io -> throw io;
            case RuntimeException r -> throw r;
            case Error e -> throw e;
            default -> throw new IllegalStateException(failure);
        }
    }

    @Override
    public void close() throws IOException {
        free();
    }

    @Override
    public String toString() {
        return device.name() + "'s exported memory (" + Units.bytes(byteSize()) + ", " + node + ")";
    }

    /** The device file as a vma maps it: the descriptor a program opened, and the memory's size. */
    record DeviceFile(Path path, FileHandle handle, long size) implements MappedFile {
        @Override public java.lang.foreign.MemorySegment mapShared(java.lang.foreign.Arena arena) throws java.io.IOException {
            return io.directmap.sys.Mmap.mapShared(handle, size, arena);
        }

        @Override public void close() throws SysException { handle.close(); }
    }

    /**
     * The exporter's memory as a peer: read through its memfd (pread, io_uring), byte-aligned, no
     * O_DIRECT. Readers are counted so that the memory is freed only when no DMA reads it.
     */
    static final class MemoryPeer implements Peer {
        private final String name;
        private final Path node;
        private final FileHandle handle;
        private int readers;      // guarded by this
        private boolean closed;   // guarded by this

        MemoryPeer(String name, Path node, FileHandle handle) {
            this.name = name;
            this.node = node;
            this.handle = handle;
        }

        @Override public String name() { return name; }
        @Override public Path node() { return node; }
        @Override public int readAlignment() { return 1; }

        @Override
        public synchronized int descriptor() {
            if (readers == 0) throw new IllegalStateException(name + ": descriptor() outside beginDirectRead/endDirectRead");
            try {
                return handle.fd();
            } catch (SysException e) {
                throw new IllegalStateException(name + ": the descriptor was closed while a DMA held it", e);
            }
        }

        @Override
        public synchronized boolean beginDirectRead() {
            if (closed) return false;
            readers++;
            return true;
        }

        @Override
        public synchronized void endDirectRead() {
            readers--;
            notifyAll();
        }

        /** No DMA may begin from now on; returns when none reads any more. */
        synchronized void closeAndAwaitReaders() {
            closed = true;
            io.directmap.lang.Monitors.awaitUninterruptibly(this, () -> readers == 0);
        }
    }
}
