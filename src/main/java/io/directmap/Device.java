package io.directmap;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.lang.Closer;
import io.directmap.lang.Monitors;
import io.directmap.mm.Vma;
import io.directmap.sys.Process;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A software device (a GPU, a NIC, an FPGA) with memory of its own and a DMA engine that reads
 * files into it: straight from the block device where the file system and the block device agree,
 * through the page cache elsewhere. Made by {@link DirectMap#device}; {@link #map} maps a file into it.
 *
 * {@link #pin} pins a range of a file for it (a dma_buf).
 *
 * <p>Closing it closes its mappings (waiting for their reads), its buffers, its pins, and its DMA engine.
 */
public final class Device implements AutoCloseable {
    private final DirectMap owner;
    private final SoftwareDevice device;
    private final DeviceKind kind;
    private final long memoryBytes;
    private final Set<FileMapping> mappings = new LinkedHashSet<>();   // guarded by this
    private final Set<DeviceBuffer> buffers = new LinkedHashSet<>();   // guarded by this
    private final Set<Pin.Pinned> pins = new LinkedHashSet<>();        // guarded by this
    private ThreadPoolExecutor readers;                                // guarded by this; made on the first asynchronous read
    private final AtomicInteger running = new AtomicInteger();
    private final AtomicInteger mostRunning = new AtomicInteger();
    private final AtomicLong ended = new AtomicLong();
    private boolean closed;                                            // guarded by this
    private boolean closeDone;                                         // guarded by this: the first close has finished

    /** The device whose reader thread this is; null on any other thread. */
    private static final ThreadLocal<Device> READER = new ThreadLocal<>();

    Device(DirectMap owner, SoftwareDevice device, DeviceKind kind, long memoryBytes) {
        this.owner = owner;
        this.device = device;
        this.kind = kind;
        this.memoryBytes = memoryBytes;
    }

    /** {@return its name: gpu0, nic1, ... (what a topology file names it by)} */
    public String name() { return device.name(); }

    /** {@return what kind of device it is} */
    public DeviceKind kind() { return kind; }

    /** {@return its memory, in bytes} */
    public long memoryBytes() { return memoryBytes; }

    /** {@return its memory not allocated now, in bytes} */
    public long memoryFree() { return device.memoryFree(); }

    /**
     * {@return how many asynchronous reads run at once (its reader threads), and the most DMA
     * requests one read keeps in flight: up to queueDepth() asynchronous reads, and any synchronous
     * ones, may each run a transfer of up to queueDepth() requests at the same time}
     */
    public int queueDepth() { return device.queueDepth(); }

    /**
     * Maps the whole file ({@link MapOptions#defaults}).
     *
     * @param file the file
     * @return the mapping; closing it lets go of every window and munmaps the file
     * @throws IOException a file that cannot be opened or mapped, or an empty file (the message
     *         names the file and what to give)
     */
    public FileMapping map(Path file) throws IOException {
        return map(file, MapOptions.defaults());
    }

    /**
     * Maps the file into this device as options say: mmaps it and binds the range in windows, each
     * mapped through device_map on its first read. Nothing is read yet.
     *
     * @param file the file
     * @param options the range, the windows and whether each is direct whole or not at all
     * @return the mapping; closing it lets go of every window and munmaps the file
     *
     * @throws IOException a file that cannot be opened or mapped, an empty file, a range outside
     *         it, a window the device cannot use (each message names the file, the range and what to give)
     */
    public FileMapping map(Path file, MapOptions options) throws IOException {
        return map(file, options, false);
    }

    /**
     * Maps the whole file into this device for writing ({@link MapOptions#defaults}): see
     * {@link #mapForWrite(Path, MapOptions)}.
     *
     * @param file the file
     * @return the mapping; closing it lets go of every window, and of the file's write lease
     * @throws IOException as {@link #mapForWrite(Path, MapOptions)}
     */
    public FileMapping mapForWrite(Path file) throws IOException {
        return mapForWrite(file, MapOptions.defaults());
    }

    /**
     * Maps the file into this device for writing (the proposal's DEVICE_MAP_FLAG_WRITE) as options
     * say: the file is opened for reading and writing, and each window is mapped through device_map
     * with WRITE on its first use. While a window is mapped the file holds a write lease: every other
     * process's open of it, for reading too, waits until the device lets go. The mapping both reads
     * ({@link FileMapping#read}) and writes ({@link FileMapping#write}).
     *
     * @param file the file
     * @param options the range, the windows and whether each is direct whole or not at all
     * @return the mapping; closing it lets go of every window and of the lease, and munmaps the file
     * @throws IOException a file that cannot be opened for writing or mapped, an empty file, a range
     *         outside it, a window the device cannot use (each message names the file and what to give)
     */
    public FileMapping mapForWrite(Path file, MapOptions options) throws IOException {
        return map(file, options, true);
    }

    private FileMapping map(Path file, MapOptions options, boolean write) throws IOException {
        synchronized (this) {
            if (closed) throw new IllegalStateException(this + " is closed; make another with DirectMap.device");
        }
        Vma vma = write ? owner.addressSpace().mmapForWrite(file) : owner.addressSpace().mmap(file);
        try {
            long size = vma.length();
            long start = options.start(), end = options.end() < 0 ? size : options.end();
            if (size == 0) throw Internals.invalid(file + ": the file is empty; there is nothing to map");
            if (start < 0 || end <= start) {
                throw Internals.invalid(file + ": range " + start + ":" + end
                        + " is empty, reversed or negative; give START < END, both in [0, " + size + "]");
            }
            if (end > size) {
                throw Internals.invalid(file + ": range " + start + ":" + end + " ends past the end of the file ("
                        + size + " bytes); give END <= " + size);
            }
            long page = Process.PAGE_SIZE;
            long bindStart = start / page * page, bindEnd = (end + page - 1) / page * page;
            long window = options.windowBytes() != 0 ? options.windowBytes()
                    : Math.max(MapOptions.DEFAULT_WINDOW, Binding.smallestWindow(bindEnd - bindStart));
            Binding binding = device.bind(vma, bindStart, bindEnd, window,
                    write ? Set.of(io.directmap.mm.MapFlag.WRITE) : Set.of(), Internals.mode(options.allOrNothing()));
            FileMapping m = new FileMapping(this, vma, binding, start, end, write);
            synchronized (this) {
                if (!closed) {
                    mappings.add(m);
                    return m;
                }
            }
            binding.close();
            throw new IllegalStateException(this + " was closed while " + file + " was being mapped");
        } catch (IOException | RuntimeException | Error e) {
            try {
                vma.close();
            } catch (IOException | RuntimeException c) {
                e.addSuppressed(c);
            }
            throw e;
        }
    }

    /**
     * Pins [start, end) of file for this device (the proposal's DEVICE_MAP_FLAG_PIN), widened to
     * whole pages: the whole range direct, in a dma_buf the device attaches to, its blocks held in
     * place until the pin is closed. Meanwhile every other open of the file for writing, and every
     * change of the range, fails with ETXTBSY (not for a lease-break-time: for as long as the pin
     * lives; a pin dies with its process). Refused, as a value, on btrfs (it moves blocks on its
     * own), without fanotify pre-content events (root, Linux 6.14+), when the file is open for
     * writing elsewhere, or when part of the range is not direct (cached pages, holes).
     *
     * @param file the file
     * @param start the first byte, a file offset
     * @param end the byte after the last one, at most the file's size
     * @return {@link Pin.Pinned} (close it to let go), or {@link Pin.Refused} with the reason
     * @throws IOException a file that cannot be opened, a range outside it (the message says what to
     *         give), or a system that failed
     * @throws IllegalStateException when the device is closed
     */
    public Pin pin(Path file, long start, long end) throws IOException {
        synchronized (this) {
            if (closed) throw new IllegalStateException(this + " is closed; make another with DirectMap.device");
        }
        io.directmap.fs.FsStack mm = owner.addressSpace();
        try (io.directmap.fs.OpenFile f = io.directmap.fs.OpenFile.open(file)) {
            long size = f.size(), page = Process.PAGE_SIZE;
            if (start < 0 || end <= start || end > size) {
                throw Internals.invalid(file + ": range " + start + ":" + end + " is empty, reversed or outside the file; give START < END, both in [0, "
                        + size + "]");
            }
            long s = start / page * page, e = Math.ceilDiv(end, page) * page;
            var request = new io.directmap.mm.MapRequest(device.endpoint(), s, e, Set.of(io.directmap.mm.MapFlag.PIN),
                    io.directmap.mm.MapMode.ALL_OR_NOTHING);
            switch (mm.fs().pin(f, request, mm.changeWatch())) {
                case io.directmap.fs.PinOutcome.Refused r -> {
                    return new Pin.Refused(file, (Part.Fallback) Internals.parts(
                            List.of(new io.directmap.mm.Segment.Fallback(s, e, r.refusal())), s, e).getFirst());
                }
                case io.directmap.fs.PinOutcome.Pinned p -> {
                    io.directmap.dmabuf.Attachment a = p.buf().attach(device.endpoint());
                    p.buf().release();   // the attachment holds the pin now
                    Pin.Pinned pinned = new Pin.Pinned(this, file, a, Internals.parts(p.segments(), s, e));
                    synchronized (this) {
                        if (!closed) {
                            pins.add(pinned);
                            return pinned;
                        }
                    }
                    a.close();
                    throw new IllegalStateException(this + " was closed while " + file + " was being pinned");
                }
            }
        }
    }

    /** The software device behind it (for its pins' reads). */
    SoftwareDevice software() { return device; }

    /**
     * Device memory of bytes for {@link FileMapping#read(long, long, DeviceBuffer)}; close it to
     * give it back.
     *
     * @param bytes its size, at least 1
     * @return the buffer
     *
     * @throws IOException when it does not fit in the device's free memory (the message says how much is free)
     * @throws IllegalStateException when the device is closed
     */
    public DeviceBuffer allocate(long bytes) throws IOException {
        if (bytes <= 0) throw Internals.invalid(name() + ": cannot allocate " + bytes + " bytes; give at least 1 byte");
        DeviceMemory.Buffer b = allocateMemory(name() + ": a buffer", bytes,
                "close buffers and Reads you no longer need, allocate less, or give the device more memory");
        DeviceBuffer buffer = new DeviceBuffer(this, b, bytes);
        synchronized (this) {
            if (!closed) {
                buffers.add(buffer);
                return buffer;
            }
        }
        b.close();
        throw new IllegalStateException(this + " is closed; make another with DirectMap.device");
    }

    /** Device memory for what (named first in the message when it does not fit, with advice after it). */
    DeviceMemory.Buffer allocateMemory(String what, long bytes, String advice) throws IOException {
        return device.allocate(what, bytes, advice);
    }

    /** Runs a read on one of the device's reader threads; fails f when the device is closed. */
    void submit(Runnable read, CompletableFuture<?> f) {
        ExecutorService e;
        synchronized (this) {
            if (closed) {
                f.completeExceptionally(new IllegalStateException(this + " is closed; make another with DirectMap.device"));
                return;
            }
            if (readers == null) {
                ThreadFactory threads = Thread.ofPlatform().daemon().name("dmap-" + name() + "-reader-", 0).factory();
                readers = new ThreadPoolExecutor(queueDepth(), queueDepth(), 0, TimeUnit.MILLISECONDS, new LinkedBlockingQueue<>(),
                        r -> threads.newThread(() -> {
                            READER.set(this);
                            r.run();
                        }));
            }
            e = readers;
        }
        try {
            e.execute(() -> {
                int now = running.incrementAndGet();
                mostRunning.accumulateAndGet(now, Math::max);
                try {
                    read.run();
                } finally {
                    running.decrementAndGet();
                    ended.incrementAndGet();
                }
            });
        } catch (RejectedExecutionException x) {
            f.completeExceptionally(new IllegalStateException(this + " is closed; make another with DirectMap.device", x));
        }
    }

    /** The most asynchronous reads that ran at once (for tests). */
    int mostReadsRunning() { return mostRunning.get(); }

    /** How many asynchronous read tasks have ended, whether they read or not (for tests). */
    long readTasksEnded() { return ended.get(); }

    /** True on a reader thread of any device: such a thread must not wait for a close that waits for it. */
    static boolean onReaderThread() { return READER.get() != null; }

    synchronized void forget(FileMapping m) { mappings.remove(m); }
    synchronized void forget(DeviceBuffer b) { buffers.remove(b); }
    synchronized void forget(Pin.Pinned p) { pins.remove(p); }

    /**
     * Closes its mappings (each waits for its reads), stops its reader threads, closes its buffers
     * (each waits for the reads writing into it) and its DMA engine, each whatever the one before
     * threw; the first failure is thrown with the rest suppressed.
     *
     * <p>Asynchronous reads still queued are taken off the queue and run on the closing thread,
     * where they fail at once on their closed mapping (so their futures, and the stages that wait
     * on them, complete); then close waits for the reader threads to end. A reader thread blocked
     * for good in a callback of the caller's keeps it waiting (see {@link FileMapping}).
     *
     * <p>A second or concurrent close waits until the first has finished (an interrupt does not
     * end that wait) and returns without throwing; on one of a device's reader threads, which the
     * first close may be waiting for, it returns at once.
     *
     * @throws IOException when a mapping's file could not be unmapped
     */
    @Override
    public void close() throws IOException {
        List<FileMapping> ms;
        List<DeviceBuffer> bs;
        List<Pin.Pinned> ps;
        ThreadPoolExecutor e;
        synchronized (this) {
            if (closed) {
                if (!onReaderThread()) Monitors.awaitUninterruptibly(this, () -> closeDone);
                return;
            }
            closed = true;
            ms = new ArrayList<>(mappings);
            bs = new ArrayList<>(buffers);
            ps = new ArrayList<>(pins);
            e = readers;
        }
        Closer<IOException> closer = Closer.keeping(IOException.class);
        try {
            closer.closeEach(ms, FileMapping::close);
            if (e != null) {
                closer.run(e::shutdown);
                // Reads queued behind the mappings' close fail at once, here: a callback blocked on
                // one of them holds a reader thread until it does.
                List<Runnable> queued = new ArrayList<>();
                e.getQueue().drainTo(queued);
                closer.closeEach(queued, Runnable::run);
                // A reader thread closing its own device must not wait for itself.
                if (READER.get() != this) closer.run(() -> awaitUninterruptibly(e));
            }
            closer.closeEach(bs, DeviceBuffer::close);
            closer.closeEach(ps, Pin.Pinned::close);
            closer.run(device::close);
            closer.run(() -> owner.forget(this));
        } finally {
            synchronized (this) {
                closeDone = true;
                notifyAll();
            }
        }
        closer.throwIfFailed();
    }

    private static void awaitUninterruptibly(ExecutorService e) {
        boolean interrupted = false;
        while (true) {
            try {
                if (e.awaitTermination(1, TimeUnit.DAYS)) break;
            } catch (InterruptedException x) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    @Override
    public String toString() { return device.toString(); }
}
