package io.directmap.device;

import io.directmap.mm.Acknowledge;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Refusal;
import io.directmap.mm.Segment;
import io.directmap.mm.VmOperations;
import io.directmap.mm.Vma;
import io.directmap.pci.Aperture;
import io.directmap.pci.Reach;
import io.directmap.pci.Topology;
import io.directmap.pci.Topology.Endpoint;
import io.directmap.sys.Process;
import io.directmap.sys.Units;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The vm operations of a software device's exported memory, the proposal's device-to-device case:
 * "the same 2 vm_operations_struct call back can be use ... when the vma is a mmap of a device
 * file and thus vm_operations_struct come from some exporter device driver". device_map answers
 * with the exporter's own peer (its memfd, read by the importer's DMA engine) at the exporter's
 * bus addresses, when the topology has a peer-to-peer path between the two
 * ({@link Topology#peerPath}, whose reason a refusal carries) and the aperture has room; otherwise
 * it refuses with {@link ExporterReason} and the importer bounces the bytes through the vma's
 * pages (host memory).
 *
 * <p>Each direct segment holds one window of the device's aperture ({@link ExportAperture}, a
 * {@link Aperture}): its bus address is the device's busBase plus the window's offset, and
 * unmapping frees exactly its windows. When the aperture is full the device refuses
 * (APERTURE_FULL, with the aperture's numbers) or, where the topology says {@code bar NAME SIZE
 * reclaim}, takes the least recently granted window back from its mapping first.
 *
 * <p>It tracks what it handed out. {@link #takeBack} tells each mapping's vma owner (its interval
 * notifiers reach the importers' windows) and returns once they let go; one that does not is
 * revoked. Once the memory is going ({@link #stop}), device_map and the fault path fail with the
 * reason: nothing of it is read any more.
 */
final class ExporterVmOperations implements VmOperations {
    private static final long PAGE = Process.PAGE_SIZE;
    private static final System.Logger LOG = System.getLogger("io.directmap");

    /** One answer of device_map; live until device_unmap, munmap, or the exporter takes it back. */
    static final class ExportMapping implements DeviceMapping {
        private final long id;
        private final ExporterVmOperations ops;
        private final MapRequest request;
        private final List<Segment> segments;
        private final List<Aperture.Window> windows;
        private final long decisionNanos;
        final Vma vma;
        private volatile boolean live = true;

        ExportMapping(long id, ExporterVmOperations ops, Vma vma, MapRequest request, List<Segment> segments,
                      List<Aperture.Window> windows, long decisionNanos) {
            this.id = id;
            this.ops = ops;
            this.vma = vma;
            this.request = request;
            this.segments = List.copyOf(segments);
            this.windows = List.copyOf(windows);
            this.decisionNanos = decisionNanos;
        }

        /** The vm operations that made it: a reclaim takes it back through them. */
        ExporterVmOperations ops() { return ops; }

        @Override public long id() { return id; }
        @Override public MapRequest request() { return request; }
        @Override public List<Segment> segments() { return segments; }
        @Override public boolean isLive() { return live; }
        /** The exporter takes its mappings back before it frees or moves the memory; nothing else changes it under them. */
        @Override public boolean coherent() { return true; }
        @Override public long decisionNanos() { return decisionNanos; }

        @Override
        public String toString() {
            return "peer mapping " + id + " " + Units.range(start(), end()) + " for " + request.importer().name();
        }
    }

    private final ExportedMemory memory;
    private final Topology topology;
    private final Endpoint exporter;
    private final ExportAperture aperture;
    private final List<ExportMapping> live = new ArrayList<>();   // guarded by this
    private long ids;                                           // guarded by this
    private long revoked;                                       // guarded by this
    private String gone;   // why nothing may be mapped any more, once the memory is going; guarded by this

    ExporterVmOperations(ExportedMemory memory, Topology topology, Endpoint exporter, ExportAperture aperture) {
        this.memory = memory;
        this.topology = topology;
        this.exporter = exporter;
        this.aperture = aperture;
    }

    @Override
    public MemorySegment fault(Vma vma, long offset, long length) throws IOException {
        synchronized (this) {
            if (gone != null) throw goneException(gone);
        }
        return vma.pages().asSlice(offset, length);
    }

    @Override
    public DeviceMapping deviceMap(Vma vma, MapRequest request) throws IOException {
        long t0 = System.nanoTime();
        if (vma.ops() != this) throw new InvalidRequestException(vma + " is not a mapping of " + memory + "; ask its own operations");
        long size = memory.byteSize();
        if (request.end() > size) {
            throw new InvalidRequestException(memory.nodePath() + ": range " + Units.range(request.start(), request.end())
                    + " ends past the end of " + memory + " (" + size + " bytes)");
        }
        synchronized (this) {
            if (gone != null) throw goneException(gone);
        }
        Endpoint importer = request.importer();
        Refusal whole = refusal(request, importer);
        List<Segment> segments = new ArrayList<>();
        List<Aperture.Window> windows = new ArrayList<>();
        if (whole != null) {
            segments.add(new Segment.Fallback(request.start(), request.end(), whole));
        } else {
            grant(request, importer, segments, windows);
        }
        synchronized (this) {
            if (gone != null) {
                aperture.free(windows);
                throw goneException(gone);
            }
            ExportMapping m = new ExportMapping(++ids, this, vma, request, segments, windows, System.nanoTime() - t0);
            try {
                vma.onUnmap(m, () -> release(m));
            } catch (RuntimeException | Error e) {
                aperture.free(windows);
                throw e;
            }
            aperture.own(windows, m);
            live.add(m);
            return m;
        }
    }

    /**
     * Takes windows of the aperture for [start, end) of the request, one direct segment each, and
     * refuses the rest (APERTURE_FULL), or the whole range for an all-or-nothing request that does
     * not fit (its windows given back). Runs without this object's lock: a reclaim waits for
     * importers that let go through {@link #deviceUnmap}.
     */
    private void grant(MapRequest request, Endpoint importer, List<Segment> segments, List<Aperture.Window> windows) {
        long at = request.start(), end = request.end();
        String route = exporter.name() + " memory > " + importer.name();
        String reclaimed = "";
        while (at < end) {
            Optional<Aperture.Window> w = aperture.allocateUpTo(end - at, PAGE, at);
            if (w.isEmpty() && aperture.whenFull() == Aperture.WhenFull.RECLAIM) {
                Aperture.Reclaimed r = aperture.reclaim(end - at, PAGE, at);
                w = r.window();
                reclaimed = r.why();
            }
            if (w.isEmpty()) break;
            windows.add(w.get());
            long n = Math.min(w.get().length(), end - at);
            segments.add(new Segment.Direct(at, at + n, memory.peer(), at, exporter.busAddress(w.get().offset()), route));
            at += n;
        }
        if (at == end) return;
        aperture.countRefusal();
        if (request.allOrNothing() && !windows.isEmpty()) {
            aperture.free(windows);
            windows.clear();
            segments.clear();
            segments.add(new Segment.Fallback(request.start(), end, new Refusal(ExporterReason.ALL_OR_NOTHING,
                    apertureDetail(end - request.start(), reclaimed) + "; the whole range goes through host memory")));
            return;
        }
        segments.add(new Segment.Fallback(at, end, new Refusal(ExporterReason.APERTURE_FULL, apertureDetail(end - at, reclaimed))));
    }

    /** The refusal of the whole request, before any aperture is reserved, or null. */
    private Refusal refusal(MapRequest request, Endpoint importer) {
        String pair = importer.name() + " and " + exporter.name();
        if (request.pin()) return new Refusal(ExporterReason.PIN_NOT_SUPPORTED, exporter.name() + " exports no dma_buf; map without PIN");
        if (request.write()) {
            return new Refusal(ExporterReason.WRITE_NOT_SUPPORTED, exporter.name() + " exports its memory read-only; map without WRITE");
        }
        Reach p2p = topology.peerPath(importer, exporter);
        if (!p2p.allowed()) {
            return new Refusal(ExporterReason.NO_P2P_PATH, "no peer-to-peer path between " + pair + ": " + p2p.why() + " ("
                    + topology.source() + "); the bytes bounce through host memory");
        }
        Reach atomics = request.atomic() ? topology.atomicPath(importer, exporter) : p2p;
        if (!atomics.allowed()) {
            return new Refusal(ExporterReason.NO_ATOMICS_ON_PATH, "the path " + importer.name() + " - " + exporter.name()
                    + " does not carry PCIe atomics: " + atomics.why() + " (" + topology.source() + ")");
        }
        return null;
    }

    /** The aperture's numbers for a refusal: size, free, largest free window, windows, what was asked, the policy. */
    private String apertureDetail(long asked, String reclaimed) {
        Aperture.Usage u = aperture.aperture().usage();
        String name = exporter.name();
        return name + "'s aperture of " + Units.bytes(u.sizeBytes()) + " has " + Units.bytes(u.freeBytes()) + " free (largest free window "
                + Units.bytes(u.largestFreeBytes()) + ", " + u.freeWindows() + " free windows, " + u.windows() + " held); "
                + Units.bytes(asked) + " more asked (windows are whole " + PAGE + "-byte pages); policy " + aperture.whenFull().code()
                + reclaimed + "; give it more with 'bar " + name + " SIZE' in the topology file, or 'bar " + name
                + " SIZE reclaim' to take back the least recently granted";
    }

    @Override
    public boolean verify(Vma vma, DeviceMapping mapping, long start, long end, boolean readFailed) {
        return mapping.isLive();
    }

    @Override
    public void deviceUnmap(Vma vma, Endpoint importer, DeviceMapping mapping) {
        if (!(mapping instanceof ExportMapping m) || m.vma != vma) {
            throw new IllegalArgumentException(mapping + " was not made by " + memory + " through " + vma);
        }
        vma.forget(m);
        release(m);
    }

    private synchronized void release(ExportMapping m) {
        if (!m.live) return;
        m.live = false;
        live.remove(m);
        aperture.free(m.windows);
        notifyAll();
    }

    /**
     * Takes back every mapping that overlaps [start, end): tells each of their vmas' owners (the
     * importers' windows let go: no new DMA, the DMA in flight waited for, table entries dropped,
     * device_unmap called) and returns once they have. An importer that still does not let go
     * after {@link Acknowledge#TRIES} tries is revoked: its mapping dies here, and nothing read
     * through it is delivered (verify says no). Returns how many mappings were taken back.
     */
    int takeBack(long start, long end, Invalidation.Cause cause, String detail) {
        List<ExportMapping> hit = new ArrayList<>();
        synchronized (this) {
            for (ExportMapping m : live) if (m.start() < end && start < m.end()) hit.add(m);
        }
        Set<Vma> told = Collections.newSetFromMap(new IdentityHashMap<>());
        Invalidation inv = Invalidation.of(start, end, cause, detail, true);
        for (ExportMapping m : hit) {
            if (!told.add(m.vma)) continue;
            Throwable t = Acknowledge.until(() -> m.vma.owner().invalidate(inv));
            if (t != null) LOG.log(System.Logger.Level.WARNING, "an importer of " + m.vma + " did not let go on " + inv
                    + " after " + Acknowledge.TRIES + " tries; its mappings are revoked", t);
        }
        for (ExportMapping m : hit) {
            if (!m.isLive()) continue;
            m.vma.forget(m);
            release(m);
            synchronized (this) {
                revoked++;
            }
        }
        return hit.size();
    }

    /** From now on device_map and the fault path fail with why: the memory is going. */
    synchronized void stop(String why) {
        if (gone == null) gone = why;
    }

    synchronized int liveMappings() { return live.size(); }

    /** Mappings taken back without their importer's acknowledgement. */
    synchronized long revoked() { return revoked; }

    private IOException goneException(String why) {
        return new IOException(memory.nodePath() + ": " + why + "; nothing of it can be mapped or read any more: munmap it");
    }
}
