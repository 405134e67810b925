package io.directmap.device;

import io.directmap.fs.DeviceMapping;
import io.directmap.fs.InvalidRequestException;
import io.directmap.fs.Segment;
import io.directmap.mm.MapFlag;
import io.directmap.mm.Vma;
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
    private final String name;
    private final Profile profile;
    private final Endpoint endpoint;
    private final DeviceMemory memory;
    private final IommuTable table = new IommuTable();
    private final DmaEngine engine;

    private SoftwareDevice(String name, Profile profile, long memoryBytes, Topology topology) {
        this.name = name;
        this.profile = profile;
        this.endpoint = topology.endpoint(name, Topology.Kind.IMPORTER, Optional.empty(), memoryBytes);
        this.memory = new DeviceMemory(name, memoryBytes);
        this.engine = new DmaEngine(name, profile.queueDepth());
    }

    /** gpu0, nic0, fpga1, ...: the profile follows from the name. */
    public static SoftwareDevice create(String name, Topology topology) {
        Profile p = Profile.ofDeviceName(name);
        return new SoftwareDevice(name, p, p.memoryBytes(), topology);
    }

    public static SoftwareDevice create(String name, Profile profile, long memoryBytes, Topology topology) {
        return new SoftwareDevice(name, profile, memoryBytes, topology);
    }

    @Override public String name() { return name; }
    @Override public Endpoint endpoint() { return endpoint; }
    public Profile profile() { return profile; }
    public IommuTable table() { return table; }
    public long memoryFree() { return memory.free(); }
    public int queueDepth() { return engine.depth(); }

    @Override
    public DeviceAccess access(Vma vma, long start, long end, Set<MapFlag> flags, Mode mode, LongConsumer progress)
            throws IOException {
        String file = vma.file().path().toString();
        if (start < 0 || end < 0) throw new InvalidRequestException(file + ": range " + start + ":" + end + " is negative");
        if (end <= start) throw new InvalidRequestException(file + ": range " + start + ":" + end
                + " is empty or reversed; give START:END with START < END");
        if (end > vma.length()) throw new InvalidRequestException(file + ": range " + start + ":" + end
                + " ends past the end of the file (" + vma.length() + " bytes); give END <= " + vma.length());
        if (flags.contains(MapFlag.SUPPORT_ATOMIC_OP) && !profile.atomics()) {
            throw new InvalidRequestException(name + " (" + profile.prefix() + ") cannot do atomic operations; drop the flag or use a gpu or fpga");
        }
        long page = Process.PAGE_SIZE;
        long mapStart = start / page * page;
        long mapEnd = (end + page - 1) / page * page;
        DeviceMemory.Buffer buffer = memory.allocate(mapEnd - mapStart);
        if (buffer == null) {
            throw new InvalidRequestException(file + ": " + Units.bytes(mapEnd - mapStart) + " does not fit in " + name
                    + "'s free memory (" + Units.bytes(memory.free()) + " of " + Units.bytes(memory.capacity())
                    + "); map a smaller range");
        }
        DeviceMapping mapping = null;
        List<IommuTable.Entry> entries = List.of();
        try {
            mapping = vma.ops().deviceMap(vma, endpoint, mapStart, mapEnd, flags, mode == Mode.ALL_OR_NOTHING);
            entries = program(vma, mapping, mapStart);
            long t0 = System.nanoTime();
            engine.transfer(entries, buffer.segment(), progress);
            long tail = vma.length() - mapStart;
            if (tail < buffer.segment().byteSize()) buffer.segment().asSlice(tail).fill((byte) 0);
            return new DeviceAccess(this, vma, mapping, entries, buffer, start, end, System.nanoTime() - t0);
        } catch (IOException | RuntimeException e) {
            table.drop(entries);
            if (mapping != null) vma.ops().deviceUnmap(vma, endpoint, mapping);
            buffer.close();
            throw e;
        }
    }

    /** Steps 4a and 4b: a peer entry for each direct segment, page-cache pages for each fallback. */
    private List<IommuTable.Entry> program(Vma vma, DeviceMapping mapping, long mapStart) throws IOException {
        List<IommuTable.Entry> entries = new ArrayList<>();
        for (Segment s : mapping.segments()) {
            long memoryOffset = s.start() - mapStart;
            IommuTable.Target target = switch (s) {
                case Segment.Direct d -> new IommuTable.Target.Peer(d.device(), d.deviceOffset(), d.busAddress());
                case Segment.Fallback f -> {
                    // Pages past the end of the file exist only in the last page; the mapping reads them as zeros.
                    long n = Math.min(s.end(), vma.length()) - s.start();
                    yield n <= 0 ? null : new IommuTable.Target.HostPages(vma.ops().fault(vma, s.start(), n));
                }
            };
            if (target == null) continue;
            long length = target instanceof IommuTable.Target.HostPages h ? h.pages().byteSize() : s.length();
            entries.add(new IommuTable.Entry(vma.address() + s.start(), length, target, memoryOffset));
        }
        table.program(entries);
        return entries;
    }

    void release(DeviceAccess access, Vma vma, DeviceMapping mapping, List<IommuTable.Entry> entries,
                 DeviceMemory.Buffer buffer) {
        table.drop(entries);
        if (!vma.isClosed()) vma.ops().deviceUnmap(vma, endpoint, mapping);
        buffer.close();
    }

    @Override
    public void close() {
        engine.close();
    }

    @Override
    public String toString() {
        return name + " (" + profile.prefix() + ", " + Units.bytes(memory.capacity()) + ")";
    }
}
