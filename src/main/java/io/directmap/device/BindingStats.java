package io.directmap.device;

import java.util.concurrent.atomic.AtomicLong;

/** What a binding counts: its windows' faults and let-goes, and its reads and how they went. */
final class BindingStats {
    final AtomicLong faults = new AtomicLong(), refaults = new AtomicLong(), invalidations = new AtomicLong(),
            retries = new AtomicLong(), reads = new AtomicLong(), incoherentReads = new AtomicLong(),
            directBytes = new AtomicLong(), fallbackBytes = new AtomicLong();
}
