package io.directmap.device;

import io.directmap.mm.AddressSpace;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MappedFile;
import io.directmap.mm.Peer;
import io.directmap.mm.VmOperations;
import io.directmap.mm.Vma;
import io.directmap.lang.Closer;
import io.directmap.pci.Topology;
import io.directmap.sys.FileHandle;
import io.directmap.sys.Statx;
import io.directmap.sys.SysException;
import io.directmap.sys.Units;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;

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
 * memfd truncated to 0, so even a vma still mapping it holds no page of it). An importer's read
 * through such a vma afterwards ({@link Binding#read}) fails, naming the device file and saying
 * it was freed; the CPU's own access to the vma's pages faults (SIGBUS on the truncated memfd,
 * which Java reports as an {@link InternalError}). Neither ever sees memory given to someone else.
 *
 * <p>Once freed, the device file's path names nothing of this memory (the descriptor number may be
 * reused by any file the process opens next): {@link #node()} throws, and {@link #mmap} refuses.
 * {@link #mmap} opens the device file under the lock {@link #free} takes, and checks that what it
 * opened is this memfd (st_dev and st_ino), so it never maps an unrelated file.
 *
 * <p>Memory that DMA may still read is never freed (STYLE habit 13): when a DMA engine gave up
 * waiting for reads of the memfd ({@link DmaInFlightException}), those reads may still use its
 * descriptor, so {@link #free} waits for them a bounded time only; if some remain, the memory is set
 * aside: neither truncated nor closed nor given back to the device's budget, kept until the process
 * exits, and free throws an IOException that names the device file and says so.
 */
public final class ExportedMemory implements AutoCloseable {
    private final SoftwareDevice device;
    private final DeviceMemory.Buffer buffer;
    private final Path node;
    private final MemoryPeer peer;
    private final ExporterVmOperations ops;
    private final Statx.Info identity;   // the memfd's st_dev and st_ino: what the device file must still open
    private boolean freeing, freed;   // guarded by this
    private String setAside;          // why the memory was kept (DMA may still read it), or null; guarded by this
    /** How long {@link #free} waits for DMA reads of the memfd after the importers let go; tests shorten it. */
    volatile Duration readerWait = Duration.ofSeconds(10);

    ExportedMemory(SoftwareDevice device, DeviceMemory.Buffer buffer, Topology topology, ExportAperture aperture)
            throws SysException {
        this.device = device;
        this.buffer = buffer;
        this.node = Path.of("/proc/" + ProcessHandle.current().pid() + "/fd/" + buffer.descriptor().fd());
        this.peer = new MemoryPeer(device.name(), node, buffer.descriptor());
        this.identity = Statx.of(buffer.descriptor());
        this.ops = new ExporterVmOperations(this, topology, device.endpoint(), aperture);
    }

    /** {@return the exporting device} */
    public SoftwareDevice device() { return device; }

    /**
     * The device file: /proc/PID/fd/N of the memfd, a path any process may open and mmap while the
     * memory is exported. Once it is freed the descriptor number may name another file, so the path
     * is not given out any more.
     *
     * @return the device file
     * @throws IllegalStateException once the memory was freed, naming the device and the path it had
     */
    public Path node() {
        synchronized (this) {
            if (freed) throw new IllegalStateException(this + " was freed: " + node + " no longer names it (the descriptor"
                    + " number may be reused by another file); export memory again for a new device file");
        }
        return node;
    }

    /** The device file's path, for messages: it may no longer name the memory once freed. */
    Path nodePath() { return node; }

    /** The exported buffer (tests reach its memfd through it). */
    DeviceMemory.Buffer buffer() { return buffer; }

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
            if (setAside != null) throw new IllegalStateException(setAside);
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
     * @throws IOException when the memory is being freed or was (the message says so), the device file
     *         cannot be opened, or what opened is not this memory's memfd
     */
    public Vma mmap(AddressSpace mm) throws IOException {
        FileHandle h;
        // Opened under the lock free() takes to start freeing: the memfd, and so its number, cannot be
        // closed in between (else the number could name whatever the process opened next).
        synchronized (this) {
            if (freeing) throw new IOException(node + ": " + this + " is freed; export memory again to map it");
            h = FileHandle.openRead(node);
            try {
                checkSameFile(node, h, identity);
            } catch (IOException | RuntimeException | Error e) {
                try {
                    h.close();
                } catch (SysException c) {
                    e.addSuppressed(c);
                }
                throw e;
            }
        }
        return mm.mmap(new DeviceFile(node, h, byteSize()), ops);
    }

    /**
     * Checks that opened, the file opened at path, is the file of identity (st_dev and st_ino
     * agree): a /proc/PID/fd/N path names whatever holds descriptor N now.
     */
    static void checkSameFile(Path path, FileHandle opened, Statx.Info identity) throws IOException {
        Statx.Info got = Statx.of(opened);
        if (!got.sameInode(identity)) {
            throw new IOException(path + " now opens another file (inode " + got.inode() + " on " + got.dev() + ", not the memfd's "
                    + identity.inode() + " on " + identity.dev() + "): its descriptor number was reused; the exported memory is"
                    + " gone or going, nothing is mapped");
        }
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
     * back to the device's budget. Idempotent; a second caller waits for the first. When DMA reads
     * of the memfd are still held after {@link #readerWait} (an engine gave up waiting for them,
     * {@link DmaInFlightException}), the memory is set aside instead: kept, open and counted as used
     * until the process exits, and this (and every later call) throws saying so.
     *
     * @throws IOException when the memory had to be set aside (naming the device file), or when
     *         taking the mappings back or closing the memfd failed: the first failure, the others
     *         suppressed in it (the memory is freed all the same)
     */
    public void free() throws IOException {
        synchronized (this) {
            if (freeing) {
                io.directmap.lang.Monitors.awaitUninterruptibly(this, () -> freed || setAside != null);
                if (setAside != null) throw new IOException(setAside);
                return;
            }
            freeing = true;
        }
        String why = device.name() + " freed its exported memory " + node + " (" + Units.bytes(byteSize()) + ")";
        Closer<IOException> closer = Closer.keeping(IOException.class);
        closer.run(() -> ops.stop(why));
        closer.run(() -> ops.takeBack(0, Long.MAX_VALUE, Invalidation.Cause.RECLAIMED, why));
        // Whatever happened above, no DMA reads the memfd past this point, or the memory is kept.
        int left = peer.closeAndAwaitReaders(readerWait);
        if (left > 0) {
            String kept = node + ": " + left + " DMA read(s) of " + this + " did not end within " + readerWait.toMillis()
                    + " ms (a DMA engine gave up waiting for them, see DmaInFlightException): they may still use its descriptor,"
                    + " so the memory is set aside, neither truncated nor closed nor given back to " + device.name()
                    + "'s budget; it is kept until the process exits";
            device.forget(this);
            synchronized (this) {
                setAside = kept;
                notifyAll();
            }
            // The set-aside error comes first: it is what the caller must know; what failed before it is kept in it.
            IOException x = new IOException(kept);
            if (closer.failure() != null) x.addSuppressed(closer.failure());
            throw x;
        }
        closer.run(buffer::close);
        device.forget(this);
        synchronized (this) {
            freed = true;
            notifyAll();
        }
        closer.throwIfFailed();
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

        /**
         * No DMA may begin from now on; returns when none reads any more, or once wait has passed
         * with some still reading (an engine that gave up waiting never ends its reads). An
         * interrupt does not cut the wait short; it is kept for the caller.
         *
         * @return the readers left: 0 when the memory may be freed
         */
        synchronized int closeAndAwaitReaders(Duration wait) {
            closed = true;
            long deadline = System.nanoTime() + wait.toNanos();
            boolean interrupted = false;
            for (long left; readers > 0 && (left = deadline - System.nanoTime()) > 0; ) {
                try {
                    java.util.concurrent.TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) Thread.currentThread().interrupt();
            return readers;
        }
    }
}
