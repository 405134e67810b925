package io.directmap.mm;

/**
 * An importer's subscription to [start, end) of a vma, in the shape of Linux's
 * mmu_interval_notifier. When the range is invalidated, {@link Ops#invalidate} runs and must not
 * return until the importer has let go of it: no new DMA started, the DMA in flight finished, the
 * table entries dropped. A reader brackets each access with {@link #readBegin} and
 * {@link #readRetry}: if an invalidation ran in between, what it read may be stale and must be
 * read again, never delivered.
 */
public final class IntervalNotifier {
    /** The importer's callback. */
    @FunctionalInterface
    public interface Ops {
        /**
         * The proposal's invalidation reached the range: let go of it before returning (no new
         * DMA, the DMA in flight finished, the table entries dropped). Throwing means the importer
         * has not let go; it is told again, then its mappings are taken back without it.
         *
         * @param notifier the subscription the invalidation overlaps
         * @param invalidation what is taken back, and why
         */
        void invalidate(IntervalNotifier notifier, Invalidation invalidation);
    }

    private final Vma vma;
    private final long start, end;
    private final Ops ops;
    private final long order;  // the vma tells its notifiers in the order they were inserted
    private long seq;        // bumped at the start and the end of every invalidation
    private int active;      // invalidations running now
    private long invalidations;

    IntervalNotifier(Vma vma, long start, long end, Ops ops, long order) {
        this.vma = vma;
        this.order = order;
        this.start = start;
        this.end = end;
        this.ops = ops;
    }

    /** {@return the vma it watches} */
    public Vma vma() { return vma; }

    /** {@return the first file offset it watches} */
    public long start() { return start; }

    /** {@return the file offset after the last one it watches} */
    public long end() { return end; }

    /**
     * mmu_interval_read_begin: waits while an invalidation of the range runs.
     *
     * @return the sequence to give {@link #readRetry(long)}
     */
    public synchronized long readBegin() {
        if (active > 0) io.directmap.lang.Monitors.awaitUninterruptibly(this, () -> active == 0);
        return seq;
    }

    /**
     * mmu_interval_read_retry: did an invalidation begin since {@link #readBegin()} returned seq?
     *
     * @param seq what readBegin returned
     * @return true when what was read may be stale and must be read again, never delivered
     */
    public synchronized boolean readRetry(long seq) {
        return this.seq != seq;
    }

    /** {@return how many invalidations reached this notifier} */
    public synchronized long invalidations() { return invalidations; }

    /** Removes the subscription; no callback runs after this returns (except one already running). */
    public void remove() {
        vma.removeNotifier(this);
    }

    long order() { return order; }

    /**
     * Runs the importer's callback. If it throws, the importer has not acknowledged: the exception
     * goes to the caller (the vma tells its other notifiers all the same, the file system tells it
     * again or revokes its mappings); readers that overlapped it still see the sequence move.
     */
    void invalidate(Invalidation inv) {
        synchronized (this) {
            seq++;
            active++;
            invalidations++;
        }
        try {
            if (io.directmap.fault.Faults.fire(io.directmap.fault.FaultPoint.INVALIDATE_THROWS)) {
                throw new IllegalStateException("fault point invalidate_throws: the importer's invalidate callback of "
                        + this + " threw on " + inv + " instead of acknowledging");
            }
            ops.invalidate(this, inv);
        } finally {
            synchronized (this) {
                seq++;
                active--;
                notifyAll();
            }
        }
    }

    @Override
    public String toString() {
        return "notifier [" + start + ", " + end + ") of " + vma;
    }
}
