package io.directmap.device;

import io.directmap.mm.Invalidation;
import io.directmap.pci.Aperture;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The BAR aperture through which a software device exposes the memory it exports: a
 * {@link Aperture} of the topology's {@code bar NAME SIZE} (else the device's memory size), shared
 * by every export of the device, in which each direct peer mapping holds page-aligned windows until
 * it is unmapped or taken back, as a block device's grants hold windows in its aperture
 * (block.BlockDevice). A direct segment's bus address is the device's busBase plus its window's
 * offset, not the memory offset: the window is where the bus sees it.
 *
 * <p>It remembers which mapping holds each window, so that the reclaim policy ({@code bar NAME SIZE
 * reclaim}) can take the least recently granted window back through the exporter's own
 * invalidation path ({@link ExporterVmOperations#takeBack}): its importers let go first. As in
 * block.BlockLayer, the invalidation runs on its own thread and is waited for at most
 * {@link Aperture#RECLAIM_WAIT_MS} (the importer asking may itself hold the victim pinned), one reclaim at
 * a time per device.
 */
final class ExportAperture {
    private final String device;
    private final Aperture aperture;
    private final Aperture.WhenFull whenFull;
    /** Window offset -> the mapping that holds it, once that mapping is made. */
    private final Map<Long, ExporterVmOperations.ExportMapping> owners = new ConcurrentHashMap<>();
    private final AtomicLong refusals = new AtomicLong();

    ExportAperture(String device, long bytes, Aperture.WhenFull whenFull) {
        this.device = device;
        this.aperture = new Aperture(device, bytes);
        this.whenFull = whenFull;
    }

    /** A window of up to bytes, in whole units, for the memory from memoryOffset (its tag); empty when full. */
    Optional<Aperture.Window> allocateUpTo(long bytes, long unit, long memoryOffset) {
        return aperture.allocateUpTo(bytes, unit, memoryOffset);
    }

    /** The windows of a mapping now made: a reclaim may take them back through it from now on. */
    void own(List<Aperture.Window> windows, ExporterVmOperations.ExportMapping m) {
        for (Aperture.Window w : windows) owners.put(w.offset(), m);
    }

    /** Gives back exactly these windows (a mapping's, or those of one that was not made). */
    void free(List<Aperture.Window> windows) {
        for (Aperture.Window w : windows) {
            owners.remove(w.offset());
            aperture.free(w.offset(), w.length());
        }
    }

    /** What a full aperture does: the topology's bar rule for the device. */
    Aperture.WhenFull whenFull() { return whenFull; }

    Aperture aperture() { return aperture; }

    long size() { return aperture.sizeBytes(); }

    long used() { return aperture.usedBytes(); }

    String device() { return device; }

    void countRefusal() { refusals.incrementAndGet(); }

    /** Direct mappings (or parts of them) refused for a full aperture. */
    long refusals() { return refusals.get(); }

    /** Windows taken back from their mappings to make room. */
    long reclaims() { return aperture.reclaims(); }

    /**
     * The reclaim policy for exported memory: the aperture takes back the least recently granted
     * windows ({@link Aperture#reclaim}) through the exporter's own invalidation path
     * ({@link ExporterVmOperations#takeBack}): the importers of the mapping that holds each let go
     * first.
     */
    Aperture.Reclaimed reclaim(long bytes, long unit, long memoryOffset) {
        return aperture.reclaim("a mapping of memory offset " + memoryOffset, victim -> {
            ExporterVmOperations.ExportMapping m = owners.get(victim.offset());
            if (m == null || !m.isLive()) return Optional.empty();
            return Optional.of(new Aperture.Holder() {
                @Override public String describe() { return m.toString(); }
                @Override public void takeBack(String detail) { m.ops().takeBack(m.start(), m.end(), Invalidation.Cause.RECLAIMED, detail); }
            });
        }, () -> aperture.allocateUpTo(bytes, unit, memoryOffset));
    }
}
