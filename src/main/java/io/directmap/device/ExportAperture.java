package io.directmap.device;

import io.directmap.mm.Invalidation;
import io.directmap.pci.Aperture;
import io.directmap.sys.Units;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
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
 * {@link #RECLAIM_WAIT_MS} (the importer asking may itself hold the victim pinned), one reclaim at
 * a time per device.
 */
final class ExportAperture {
    /** How long a reclaim waits for the owners of a window to let go before it refuses instead. */
    static final long RECLAIM_WAIT_MS = 1_000;

    private final String device;
    private final Aperture aperture;
    private final Aperture.WhenFull whenFull;
    /** Window offset -> the mapping that holds it, once that mapping is made. */
    private final Map<Long, ExporterVmOperations.ExportMapping> owners = new ConcurrentHashMap<>();
    private final AtomicLong refusals = new AtomicLong(), reclaims = new AtomicLong();
    private final AtomicBoolean reclaiming = new AtomicBoolean();

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
    long reclaims() { return reclaims.get(); }

    /** What a reclaim gave: a window, or none and why (appended to the refusal's detail). */
    record Reclaim(Optional<Aperture.Window> window, String why) {}

    /**
     * Takes back the least recently granted windows, one at a time, by invalidating the mappings
     * that hold them (their importers let go first), until a window of up to bytes fits. Windows of
     * mappings still being made (this very request's earlier windows among them) have no owner to
     * ask yet and are passed over.
     */
    Reclaim reclaim(long bytes, long unit, long memoryOffset) {
        int passedOver = 0;
        for (Aperture.Window victim : aperture.leastRecentlyUsed()) {
            ExporterVmOperations.ExportMapping m = owners.get(victim.offset());
            if (m == null || !m.isLive()) {
                passedOver++;
                continue;
            }
            if (!reclaiming.compareAndSet(false, true)) {
                return new Reclaim(Optional.empty(), "; a window is being taken back already and its importers have not let go yet");
            }
            reclaims.incrementAndGet();
            String detail = device + "'s aperture is full: its least recently granted window (bus offset " + victim.offset() + ", "
                    + Units.bytes(victim.length()) + ", " + m + ") is taken back for a mapping of memory offset " + memoryOffset;
            var done = new CompletableFuture<Void>();
            Thread t = Thread.ofPlatform().daemon().name("dmap-reclaim-" + device).unstarted(() -> {
                Throwable failed = null;
                try {
                    m.ops().takeBack(m.start(), m.end(), Invalidation.Cause.RECLAIMED, detail);
                } catch (Throwable x) {
                    failed = x;
                }
                // Free for the next reclaim before the waiter wakes.
                reclaiming.set(false);
                if (failed == null) done.complete(null); else done.completeExceptionally(failed);
            });
            try {
                t.start();
            } catch (RuntimeException | Error x) {
                reclaiming.set(false);
                throw x;
            }
            try {
                done.get(RECLAIM_WAIT_MS, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                return new Reclaim(Optional.empty(), "; the importers of its least recently granted window (" + m + ") did not let go within "
                        + RECLAIM_WAIT_MS + " ms (a DMA in flight through it, perhaps this read's own); it is freed when they do");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return new Reclaim(Optional.empty(), "; interrupted while its least recently granted window was taken back");
            } catch (ExecutionException e) {
                System.getLogger("io.directmap").log(System.Logger.Level.WARNING, "reclaiming " + detail + " failed", e.getCause());
            }
            Optional<Aperture.Window> w = aperture.allocateUpTo(bytes, unit, memoryOffset);
            if (w.isPresent()) return new Reclaim(w, "");
        }
        return new Reclaim(Optional.empty(), passedOver == 0 ? "; nothing could be taken back"
                : "; " + passedOver + " windows belong to mappings still being made (no importer to ask yet) and were not taken back");
    }
}
