package io.directmap.device;

import java.lang.ref.Cleaner;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What a binding counts: its windows' faults and let-goes, and its reads and how they went; and
 * the same summed over every binding of this process, live or gone ({@link #totals()}, what
 * {@code dmap stats} shows).
 *
 * <p>The process's sum holds each binding's counters, not the binding, so a binding nobody
 * closes still goes away; when it does, a cleaner adds its counts to those of the bindings gone
 * before, under the same lock the sum is read under, so no count is lost or counted twice.
 */
public final class BindingStats {
    final AtomicLong faults = new AtomicLong(), refaults = new AtomicLong(), invalidations = new AtomicLong(),
            retries = new AtomicLong(), reads = new AtomicLong(), incoherentReads = new AtomicLong(),
            directBytes = new AtomicLong(), fallbackBytes = new AtomicLong();

    /**
     * The counts of every binding of this process, as {@code dmap stats} shows them.
     *
     * @param faults          windows faulted in: device_map calls that made a mapping
     * @param refaults        faults of a window that had been mapped before (it let go, and faulted again)
     * @param invalidations   let-goes: mappings the exporter invalidated while the binding held them
     * @param retries         window reads done again: the notifier's sequence moved (read_retry), the
     *                        exporter's check found the mapping gone, or the DMA failed
     * @param reads           reads the bindings completed
     * @param incoherentReads reads that went ahead incoherent ({@code coherent=false}): another process held
     *                        the file open for writing past the binding's coherent wait
     * @param directBytes     bytes read straight from the block device (peer-to-peer)
     * @param fallbackBytes   bytes read through the page cache
     */
    public record Totals(long faults, long refaults, long invalidations, long retries, long reads,
                         long incoherentReads, long directBytes, long fallbackBytes) {
        Totals plus(AtomicLong[] c) {
            return new Totals(faults + c[0].get(), refaults + c[1].get(), invalidations + c[2].get(),
                    retries + c[3].get(), reads + c[4].get(), incoherentReads + c[5].get(), directBytes + c[6].get(),
                    fallbackBytes + c[7].get());
        }
    }

    private static final Cleaner CLEANER = Cleaner.create();
    private static final Object LOCK = new Object();
    private static final Map<Long, AtomicLong[]> LIVE = new ConcurrentHashMap<>();
    private static final AtomicLong IDS = new AtomicLong();
    private static Totals gone = new Totals(0, 0, 0, 0, 0, 0, 0, 0);   // guarded by LOCK

    BindingStats() {
        long id = IDS.incrementAndGet();
        AtomicLong[] counters = {faults, refaults, invalidations, retries, reads, incoherentReads, directBytes, fallbackBytes};
        LIVE.put(id, counters);
        // The action holds the counters and the id, never this.
        CLEANER.register(this, () -> {
            synchronized (LOCK) {
                AtomicLong[] c = LIVE.remove(id);
                if (c != null) gone = gone.plus(c);
            }
        });
    }

    /** {@return every binding's counts summed: those alive now and those gone} */
    public static Totals totals() {
        synchronized (LOCK) {
            Totals t = gone;
            for (AtomicLong[] c : LIVE.values()) t = t.plus(c);
            return t;
        }
    }
}
