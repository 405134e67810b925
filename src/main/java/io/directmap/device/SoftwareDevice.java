package io.directmap.device;

import io.directmap.mm.DeviceMapping;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.Segment;
import io.directmap.mm.Transfer;
import io.directmap.mm.Vma;
import io.directmap.pci.Aperture;
import io.directmap.pci.Topology;
import io.directmap.pci.Topology.Endpoint;
import io.directmap.sys.Process;
import io.directmap.sys.Units;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.LongConsumer;

/**
 * A built-in software device (gpu, nic, fpga): its own memory off the Java heap, an IOMMU-like
 * table and a DMA engine that moves bytes for real. It mirrors the vma at page granularity, as
 * a device driver does, so an access is widened to whole pages for device_map and the bytes past
 * the end of the file read as zeros, as in the CPU's mapping.
 */
public final class SoftwareDevice implements Importer {
    /**
     * The size of the direct read requests the DMA engine makes for a transfer (what fio is given to compare).
     *
     * @param bytes the bytes of the transfer
     * @param depth the reads the engine keeps in flight
     * @return the bytes of each request
     */
    public static long directRequestSize(long bytes, int depth) {
        return DmaEngine.requestSize(bytes, DmaEngine.PEER_REQUEST, depth);
    }

    private final String name;
    private final Profile profile;
    private final Endpoint endpoint;
    private final DeviceMemory memory;
    private final IommuTable table = new IommuTable();
    private final DmaEngine engine;
    private final Topology topology;
    private final ExportAperture aperture;
    private final List<ExportedMemory> exports = new ArrayList<>();   // guarded by itself
    private boolean closed;                                            // guarded by exports

    private SoftwareDevice(String name, Profile profile, long memoryBytes, Topology topology, boolean ioUring) {
        this.name = name;
        this.profile = profile;
        // One endpoint per name serves both of its roles: the importer that asks (client) and the
        // exporter whose memory is asked for (provider). The tree's rules tell only a block device
        // apart (it completes no AtomicOps unless a completer rule says so); a software device as
        // provider completes what its placement or a completer rule says, whichever role it
        // registered in. Its aperture (for exported memory) is the endpoint's: bar NAME SIZE.
        this.endpoint = topology.endpoint(name, Topology.Kind.IMPORTER, Optional.empty(), memoryBytes);
        this.memory = new DeviceMemory(name, memoryBytes);
        this.topology = topology;
        this.aperture = new ExportAperture(name, endpoint.apertureBytes(), topology.whenFull(name));
        this.engine = ioUring ? new DmaEngine(name, profile.queueDepth(), memory)
                : new DmaEngine(name, profile.queueDepth(), memory, false);
    }

    private SoftwareDevice(String name, Profile profile, long memoryBytes, Topology topology) {
        this(name, profile, memoryBytes, topology, true);
    }

    /** A device whose DMA engine reads peers with worker threads, as with DMAP_IO_URING=off (tests of that path). */
    static SoftwareDevice withWorkerReads(String name, Topology topology) {
        Profile p = Profile.ofDeviceName(name);
        return new SoftwareDevice(name, p, p.memoryBytes(), topology, false);
    }

    /**
     * A device whose profile follows from its name: gpu0, nic0, fpga1, ...
     *
     * @param name the device's name; its prefix picks the profile
     * @param topology the bus it is registered on, as an importer
     * @return the device; closing it frees its memory
     */
    public static SoftwareDevice create(String name, Topology topology) {
        Profile p = Profile.ofDeviceName(name);
        return new SoftwareDevice(name, p, p.memoryBytes(), topology);
    }

    /**
     * A device with the profile and memory given.
     *
     * @param name the device's name
     * @param profile what it can do (queue depth, atomics)
     * @param memoryBytes its memory, which is also its aperture on the bus
     * @param topology the bus it is registered on, as an importer
     * @return the device; closing it frees its memory
     */
    public static SoftwareDevice create(String name, Profile profile, long memoryBytes, Topology topology) {
        return new SoftwareDevice(name, profile, memoryBytes, topology);
    }

    @Override public String name() { return name; }
    @Override public Endpoint endpoint() { return endpoint; }

    /** {@return what it can do: queue depth, atomics, memory} */
    public Profile profile() { return profile; }

    /** {@return its IOMMU-like table: what each mirrored virtual address reaches} */
    public IommuTable table() { return table; }

    /** {@return the bytes of its memory not allocated} */
    public long memoryFree() { return memory.free(); }

    /** {@return the bytes of device memory kept allocated for good because a DMA that failed could not be waited for} */
    public long memorySetAside() { return memory.setAsideBytes(); }

    /** {@return how many reads its DMA engine keeps in flight} */
    public int queueDepth() { return engine.depth(); }

    /**
     * Accesses [start, end) of the vma with no flags, direct where granted ({@link MapMode#MIXED}).
     *
     * @param vma the mapping to mirror
     * @param start the first file offset
     * @param end the file offset after the last one
     * @return what was moved into device memory, and how
     * @throws InvalidRequestException for a range outside the file, or one that does not fit in its memory
     * @throws IOException when device_map or a read failed
     */
    public DeviceAccess access(Vma vma, long start, long end) throws IOException {
        return access(vma, start, end, Set.of(), MapMode.MIXED, done -> { });
    }

    /**
     * Accesses bytes [start, end) of the vma: calls device_map on it, programs its table with the
     * direct answers and the page-cache pages for the rest, and moves every byte into its memory.
     *
     * @param vma the mapping to mirror
     * @param start the first file offset
     * @param end the file offset after the last one
     * @param flags the DEVICE_MAP_FLAG_* bits
     * @param mode how it takes a partial answer
     * @param progress told of the bytes moved as they arrive
     * @return what was moved into device memory, and how; closing it frees the memory
     * @throws InvalidRequestException for a range outside the file, or one that does not fit in its memory
     * @throws IOException when device_map or a read failed
     */
    public DeviceAccess access(Vma vma, long start, long end, Set<MapFlag> flags, MapMode mode, LongConsumer progress)
            throws IOException {
        String file = vma.file().path().toString();
        if (start < 0 || end < 0) throw new InvalidRequestException(file + ": range " + start + ":" + end + " is negative");
        if (end <= start) throw new InvalidRequestException(file + ": range " + start + ":" + end
                + " is empty or reversed; give START:END with START < END");
        if (end > vma.length()) throw new InvalidRequestException(file + ": range " + start + ":" + end
                + " ends past the end of the file (" + vma.length() + " bytes); give END <= " + vma.length());
        long page = Process.PAGE_SIZE;
        long mapStart = start / page * page;
        long mapEnd = (end + page - 1) / page * page;
        Binding binding = bind(vma, mapStart, mapEnd, mapEnd - mapStart, flags, mode);
        DeviceMemory.Buffer buffer;
        try {
            buffer = allocate(file, mapEnd - mapStart);
        } catch (IOException | RuntimeException | Error e) {
            try {
                binding.close();
            } catch (RuntimeException | Error c) {
                e.addSuppressed(c);
            }
            throw e;
        }
        try {
            long t0 = System.nanoTime();
            long readEnd = Math.min(mapEnd, vma.length());
            Binding.Read r = binding.read(mapStart, readEnd - mapStart, buffer.segment(), progress);
            long tail = vma.length() - mapStart;
            if (tail < buffer.segment().byteSize()) buffer.segment().asSlice(tail).fill((byte) 0);
            return new DeviceAccess(this, binding, buffer, start, end, r, System.nanoTime() - t0);
        } catch (IOException | RuntimeException | Error e) {
            // The engine returns only when no read of it can still land here; memory it could not
            // wait for was set aside, and closing the buffer keeps it.
            try {
                binding.close();
            } catch (RuntimeException | Error c) {
                e.addSuppressed(c);
            } finally {
                buffer.close();
            }
            throw e;
        }
    }

    /**
     * Binds [start, end) of the vma (page-aligned) for repeated reads: the range is cut into windows
     * of windowBytes, each faulted through device_map on first access and let go on invalidation.
     * windowBytes must be a positive multiple of the page size that cuts the range into at most
     * {@link Binding#MAX_WINDOWS} windows ({@link Binding#smallestWindow} gives the smallest).
     *
     * @param vma the mapping to mirror
     * @param start the first file offset, page-aligned
     * @param end the file offset after the last one
     * @param windowBytes the size of each window
     * @param flags the DEVICE_MAP_FLAG_* bits
     * @param mode how each window takes a partial answer
     * @return the binding; closing it lets go of every window
     * @throws InvalidRequestException for a range or window size that cannot be bound, or atomics on
     *         a device that has none; the message says what to give instead
     */
    public Binding bind(Vma vma, long start, long end, long windowBytes, Set<MapFlag> flags, MapMode mode)
            throws InvalidRequestException {
        long page = Process.PAGE_SIZE;
        String file = vma.file().path().toString();
        // A WRITE binding may reach past the end of the file: the file system writes (and extends) that part.
        boolean write = flags.contains(MapFlag.WRITE);
        if (start < 0 || start % page != 0 || end <= start || (!write && end > (vma.length() + page - 1) / page * page)) {
            throw new InvalidRequestException(file + ": cannot bind [" + start + ", " + end + "); give a page-aligned range inside [0, "
                    + vma.length() + ")");
        }
        Binding.checkWindows(file, start, end, windowBytes);
        if (flags.contains(MapFlag.SUPPORT_ATOMIC_OP) && !profile.atomics()) {
            throw new InvalidRequestException(name + " (" + profile.prefix() + ") cannot do atomic operations; drop the flag or use a gpu or fpga");
        }
        return new Binding(this, vma, start, end, windowBytes, flags, mode);
    }

    /**
     * Device memory for bytes, or a message that says what fits (InvalidRequestException), or that
     * the host could not back it (SysException, ENOMEM).
     *
     * @param file what the memory is for, named in messages
     * @param bytes how much
     * @return the buffer; closing it gives the memory back
     * @throws InvalidRequestException when it does not fit in the free memory
     * @throws IOException when the host could not back it
     */
    public DeviceMemory.Buffer allocate(String file, long bytes) throws IOException {
        return allocate(file, bytes, "map a smaller range");
    }

    /**
     * {@link #allocate(String, long)}, with what to do when it does not fit said by the caller.
     *
     * @param what what the memory is for, named first in messages, such as "data.bin: read [0, 4096)"
     * @param bytes how much
     * @param advice what the message tells the caller to do when it does not fit, such as "allocate less"
     * @return the buffer; closing it gives the memory back
     * @throws InvalidRequestException when it does not fit in the free memory
     * @throws IOException when the host could not back it
     */
    public DeviceMemory.Buffer allocate(String what, long bytes, String advice) throws IOException {
        DeviceMemory.Buffer buffer = memory.allocate(bytes);
        if (buffer == null) {
            throw new InvalidRequestException(what + ": " + Units.bytes(bytes) + " does not fit in " + name
                    + "'s free memory (" + Units.bytes(memory.free()) + " of " + Units.bytes(memory.capacity())
                    + "); " + advice);
        }
        return buffer;
    }

    /**
     * Exports bytes of this device's memory (rounded up to whole pages) as a device file: see
     * {@link ExportedMemory}. Importers that map it get peer-to-peer mappings where the topology
     * has a path between them and this device's aperture (the topology's {@code bar NAME SIZE},
     * else its memory size) has room. The memory comes from this device's budget; closing the
     * device frees every export still live.
     *
     * @param bytes how much to export; rounded up to whole pages
     * @return the exported memory; freeing it waits for its importers to let go
     * @throws InvalidRequestException for a size that is not positive, or that does not fit in the free memory
     * @throws IOException when the host could not back the memory (ENOMEM), naming the device
     * @throws IllegalStateException when the device is closed
     */
    public ExportedMemory export(long bytes) throws IOException {
        if (bytes <= 0) throw new InvalidRequestException(name + ": cannot export " + bytes + " bytes; give a positive size");
        long page = Process.PAGE_SIZE;
        long size = Math.ceilDiv(bytes, page) * page;
        String memfdName = name + "-memory";
        DeviceMemory.Buffer buffer = memory.allocateExported(memfdName, size);
        if (buffer == null) {
            throw new InvalidRequestException(name + ": exporting " + Units.bytes(size) + " does not fit in its free memory ("
                    + Units.bytes(memory.free()) + " of " + Units.bytes(memory.capacity()) + "); export less");
        }
        ExportedMemory e;
        try {
            e = new ExportedMemory(this, buffer, topology, aperture);
        } catch (IOException | RuntimeException | Error x) {
            buffer.close();
            throw x;
        }
        synchronized (exports) {
            if (!closed) {
                exports.add(e);
                EXPORTING.add(this);
                return e;
            }
        }
        e.free();
        throw new IllegalStateException(name + " is closed: it exports nothing");
    }

    /** {@return bytes of this device's aperture that live peer mappings of its exported memory hold} */
    public long apertureUsed() { return aperture.used(); }

    /**
     * The BAR aperture through which importers reach the memory this device exports: its windows
     * (one per direct segment of a live peer mapping), their grant order, its fragmentation. Its
     * size is the topology's {@code bar NAME SIZE}, else the device's memory size.
     *
     * @return the aperture, shared by every export of this device
     */
    public Aperture aperture() { return aperture.aperture(); }

    /** {@return what a full aperture does: refuse, or reclaim (the topology's {@code bar NAME SIZE reclaim})} */
    public Aperture.WhenFull apertureWhenFull() { return aperture.whenFull(); }

    /** {@return how often a peer mapping of its exported memory was refused, in whole or part, for a full aperture} */
    public long apertureRefusals() { return aperture.refusals(); }

    /** {@return how many windows were taken back from their peer mappings to make room (the reclaim policy)} */
    public long apertureReclaims() { return aperture.reclaims(); }

    /** {@return the exports not yet freed} */
    public List<ExportedMemory> exports() {
        synchronized (exports) {
            return List.copyOf(exports);
        }
    }

    void forget(ExportedMemory e) {
        synchronized (exports) {
            exports.remove(e);
            if (exports.isEmpty()) EXPORTING.remove(this);
        }
    }

    /** The devices of this process with memory exported now (what dmap stats shows of exporters). */
    private static final java.util.Set<SoftwareDevice> EXPORTING = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * The software devices of this process that export memory now, by name: what a process's
     * statistics show of exporters (their apertures and peer mappings). A device joins at its first
     * export and leaves when its last one is freed.
     *
     * @return the devices, sorted by name
     */
    public static List<SoftwareDevice> exporting() {
        return EXPORTING.stream().sorted(java.util.Comparator.comparing(SoftwareDevice::name)).toList();
    }

    DmaEngine engine() { return engine; }

    /**
     * Reads the direct segments of a pinned buffer (a dma_buf attachment's map) into dst, which
     * holds file offset base at its start: one DMA, straight from the peers, no vma needed (the
     * buffer outlives it). Every segment must be direct and inside [base, base + dst.byteSize()).
     *
     * @param segments what the attachment mapped
     * @param base the file offset dst starts at
     * @param dst device memory of this device
     * @throws InvalidRequestException for a segment that is not direct or does not fit in dst
     * @throws IOException when a read fails (the message names the peer)
     */
    public void readDirect(List<Segment> segments, long base, java.lang.foreign.MemorySegment dst) throws IOException {
        List<IommuTable.Entry> entries = new ArrayList<>();
        for (Segment s : segments) {
            if (!(s instanceof Segment.Direct d)) {
                throw new InvalidRequestException(name + ": " + s + " is not direct; a device reads a pinned buffer only straight from its peers");
            }
            if (d.start() < base || d.end() - base > dst.byteSize()) {
                throw new InvalidRequestException(name + ": segment " + Units.range(d.start(), d.end()) + " does not fit in "
                        + Units.bytes(dst.byteSize()) + " of device memory from file offset " + base);
            }
            entries.add(new IommuTable.Entry(d.start(), d.length(), new IommuTable.Target.Peer(d.peer(), d.deviceOffset(), d.busAddress()),
                    d.start() - base));
        }
        engine.transfer(entries, dst, done -> { });
    }

    /** Steps 4a and 4b: a peer entry for each direct segment, page-cache pages for each fallback. */
    List<IommuTable.Entry> program(Vma vma, DeviceMapping mapping, long mapStart, boolean write) throws IOException {
        List<IommuTable.Entry> entries = new ArrayList<>();
        for (Segment s : mapping.segments()) {
            long memoryOffset = s.start() - mapStart;
            IommuTable.Target target = switch (s) {
                case Segment.Direct d -> new IommuTable.Target.Peer(d.peer(), d.deviceOffset(), d.busAddress());
                // A refused write goes through the file system's write path, past the end of the file too.
                case Segment.Fallback f when write -> new IommuTable.Target.FileStore(vma);
                case Segment.Fallback f -> {
                    // Pages past the end of the file exist only in the last page; the mapping reads them as zeros.
                    long n = Math.min(s.end(), vma.length()) - s.start();
                    Transfer way = f.refusal().reason().transfer().orElse(null);
                    yield n <= 0 ? null : new IommuTable.Target.HostPages(vma.ops().fault(vma, s.start(), n), way);
                }
            };
            if (target == null) continue;
            long length = target instanceof IommuTable.Target.HostPages h ? h.pages().byteSize() : s.length();
            if (length <= 0) continue;
            entries.add(new IommuTable.Entry(vma.address() + s.start(), length, target, memoryOffset));
        }
        table.program(entries);
        return entries;
    }

    /**
     * Frees every export still live (each waits for its importers to let go: see
     * {@link ExportedMemory#free}), then stops the DMA engine. A failure to free is thrown after
     * all were tried (UncheckedIOException, the others suppressed).
     */
    @Override
    public void close() {
        List<ExportedMemory> all;
        synchronized (exports) {
            closed = true;
            all = List.copyOf(exports);
        }
        try {
            io.directmap.lang.Closer.closeAll(IOException.class, all, ExportedMemory::free);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(name + ": freeing its exported memory failed", e);
        } finally {
            engine.close();
        }
    }

    @Override
    public String toString() {
        return name + " (" + profile.prefix() + ", " + Units.bytes(memory.capacity()) + ")";
    }
}
