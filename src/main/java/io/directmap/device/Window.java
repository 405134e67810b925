package io.directmap.device;

import io.directmap.mm.DeviceMapping;
import io.directmap.mm.IntervalNotifier;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.sys.Process;
import io.directmap.sys.Units;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * One window of a {@link Binding}: its notifier, its mapping and table entries while faulted, its
 * DMA in flight. A read of it is one sequence, for the binding's fast path and for the window's own
 * slow one: {@link #pin} (read_begin, fault if unmapped, count the DMA in flight), the DMA
 * ({@link Binding#transfer}, which unpins), {@link #finish} (read_retry and the placement check).
 */
final class Window implements IntervalNotifier.Ops {
    /** One window's part of a DMA: the sequence it began at and what it read through. */
    record Pinned(Window window, long seq, DeviceMapping mapping, List<IommuTable.Entry> entries, long start, long end) {}

    private final Binding binding;
    private final Vma vma;
    private final BindingStats stats;
    final long start, end;
    IntervalNotifier notifier;
    private DeviceMapping mapping;                     // guarded by this
    private List<IommuTable.Entry> entries = List.of(); // guarded by this
    private int inFlight;                              // guarded by this
    private boolean faultedBefore;
    /** A delivered read copied some of this window through the page cache, so this process maps those pages. */
    private volatile boolean pagesMapped;

    Window(Binding binding, long start, long end) {
        this.binding = binding;
        this.vma = binding.vma();
        this.stats = binding.stats;
        this.start = start;
        this.end = end;
    }

    /** The live mapping, or null while unfaulted. */
    synchronized DeviceMapping mapping() {
        return mapping;
    }

    /**
     * read_begin, fault if unmapped, and count a DMA in flight, added to into (which must have room
     * for it, so nothing allocates between the pin and the caller's unpin); null, with nothing
     * pinned, while the mapping is not coherent and System.nanoTime() is below coherentDeadline
     * (the caller waits or takes another path). A fault's failure is thrown.
     */
    Pinned pin(long s, long e, long coherentDeadline, List<Pinned> into) throws IOException {
        long seq = notifier.readBegin();
        synchronized (this) {
            if (mapping == null) fault();
            if (!mapping.coherent() && System.nanoTime() < coherentDeadline) return null;
            Pinned p = new Pinned(this, seq, mapping, entries, s, e);
            into.add(p);
            inFlight++;
            return p;
        }
    }

    /**
     * The fast path's pin: only if the window is ready for a DMA now (mapped, coherent or no wait
     * for coherence asked); null if it is not (the slow path waits for it).
     */
    Pinned tryPin(long s, long e, List<Pinned> into) {
        try {
            return pin(s, e, binding.coherentWait().isZero() ? Long.MIN_VALUE : Long.MAX_VALUE, into);
        } catch (IOException x) {
            return null;
        }
    }

    synchronized void unpin() {
        inFlight--;
        notifyAll();
    }

    /**
     * What one window's part of a delivered read came to: its bytes read direct and through the
     * page cache, the attempts read again, and whether the mapping held writers back. The segments
     * it was read through went to the read's list.
     */
    record Served(long directBytes, long fallbackBytes, int retries, boolean coherent) {}

    /**
     * read_retry and the placement check after a DMA: null to read again (nothing added to into),
     * or what this window's part came to, with the segments of the mapping it was read through,
     * cut to [p.start(), p.end()), added to into in order.
     */
    Served finish(Pinned p, boolean failed, List<Segment> into) throws IOException {
        if (notifier.readRetry(p.seq())) {
            stats.retries.incrementAndGet();
            return null;
        }
        boolean valid = vma.ops().verify(vma, p.mapping(), p.start(), p.end(), failed);
        if (!valid || notifier.readRetry(p.seq()) || failed) {
            stats.retries.incrementAndGet();
            // Taken back without this window being told (revoked after a failed invalidate, or by a
            // check that found nobody to tell): drop it, so the next attempt faults afresh instead of
            // reading through a dead mapping over and over.
            if (!p.mapping().isLive()) dropDead(p.mapping());
            return null;
        }
        long direct = 0;
        for (Segment seg : p.mapping().segments()) {
            long from = Math.max(p.start(), seg.start()), to = Math.min(p.end(), seg.end());
            if (to <= from) continue;
            into.add(cut(seg, from, to));
            if (seg instanceof Segment.Direct) direct += to - from;
        }
        if (direct < p.end() - p.start()) pagesMapped = true;
        return new Served(direct, (p.end() - p.start()) - direct, 0, p.mapping().coherent());
    }

    /** seg cut to [from, to) (inside it): seg itself when it is exactly that, so whole segments are not copied. */
    static Segment cut(Segment seg, long from, long to) {
        if (seg.start() == from && seg.end() == to) return seg;
        long skip = from - seg.start();
        return switch (seg) {
            case Segment.Direct d -> new Segment.Direct(from, to, d.peer(), d.deviceOffset() + skip, d.busAddress() + skip, d.route());
            case Segment.Fallback f -> new Segment.Fallback(from, to, f.refusal());
        };
    }

    /**
     * The whole protocol for one window, waiting where the fast path would not; the segments of the
     * attempt it delivers (only that one) are added to into, as {@link #finish} adds them.
     */
    Served read(long s, long e, MemorySegment dst, LongConsumer progress, List<Segment> into) throws IOException {
        long deadline = System.nanoTime() + binding.coherentWait().toNanos();
        int retried = 0;
        while (true) {
            DmaEngine.Stats dmaStats = new DmaEngine.Stats();
            List<Pinned> pinned = new ArrayList<>(1);
            Pinned p;
            try {
                p = pin(s, e, deadline, pinned);
            } catch (InvalidRequestException bad) {
                // The file is shorter than the window just now (truncated, being extended): wait for it.
                if (System.nanoTime() > deadline) throw bad;
                retried++;
                pause();
                continue;
            }
            if (p == null) {
                // Another process has the file open for writing (or is changing this range): wait for it to
                // close, then fault again. Each fault asks the file system again, so the wait grows to 4 ms
                // between them: polling every millisecond took CPU from the very writer being waited for.
                letGo(null);
                retried++;
                pause(Math.min(4, 1 + retried / 4));
                continue;
            }
            // Pinned from here: nothing that can throw comes between the pin and the try whose finally unpins.
            long t0 = System.nanoTime();
            IOException failure = binding.transfer(pinned, s, dst, progress, dmaStats);
            Served r = finish(p, failure != null, into);
            if (r != null) {
                binding.report(dmaStats, System.nanoTime() - t0);
                return new Served(r.directBytes(), r.fallbackBytes(), retried, r.coherent());
            }
            retried++;
            if (failure != null && !notifier.readRetry(p.seq())) {
                // Nothing below changed that we can see: the fault is real (a page-cache read of a truncated file).
                if (retried > 8) throw failure;
                letGo(null);
                pause();
            }
        }
    }

    /** device_map for the window and the table entries for its answer; called holding this. */
    private void fault() throws IOException {
        // close() sets closed before it takes each window's lock, so a fault after close lets go of nothing.
        if (binding.isClosed()) throw new IllegalStateException("binding of " + vma + " is closed");
        SoftwareDevice device = binding.device();
        if (faultedBefore && pagesMapped) unmapPages();
        DeviceMapping m = vma.ops().deviceMap(vma, new MapRequest(device.endpoint(), start, roundUpPage(end), binding.flags(),
                binding.mode()));
        try {
            entries = device.program(vma, m, start, binding.flags().contains(io.directmap.mm.MapFlag.WRITE));
        } catch (IOException | RuntimeException | Error x) {
            try {
                vma.ops().deviceUnmap(vma, device.endpoint(), m);
            } catch (RuntimeException | Error u) {
                x.addSuppressed(u);
            }
            throw x;
        }
        mapping = m;
        stats.faults.incrementAndGet();
        if (faultedBefore) stats.refaults.incrementAndGet();
        faultedBefore = true;
    }

    /**
     * Before faulting anew: this process lets go of the page-cache pages its earlier copies mapped
     * (as a driver unpins the pages it faulted for a device), so that the file system may drop
     * those its own fallback brought in and map the range directly again. Failing to is harmless:
     * the pages stay, and the range goes through the page cache as before.
     */
    private void unmapPages() {
        pagesMapped = false;
        try {
            vma.dropPageMappings(start, end);
        } catch (IOException e) {
            System.getLogger("io.directmap").log(System.Logger.Level.DEBUG, "madvise on " + vma + " " + Units.range(start, end)
                    + " failed; its pages stay mapped", e);
        }
    }

    @Override
    public void invalidate(IntervalNotifier n, Invalidation inv) {
        long t0 = System.nanoTime();
        if (!letGo(inv)) return;
        try {
            binding.onLetGo().accept(new Binding.LetGo(inv, start, end, System.nanoTime() - t0));
        } catch (RuntimeException | Error x) {
            // The window has let go; a throw here would stop the invalidation of the windows after it.
            System.getLogger("io.directmap").log(System.Logger.Level.WARNING, "the onLetGo callback of " + vma + " "
                    + Units.range(start, end) + " threw; the window was let go all the same", x);
        }
    }

    /** Lets go of m if it is still this window's mapping (it is no longer live). */
    private void dropDead(DeviceMapping m) {
        synchronized (this) {
            if (mapping != m) return;
        }
        letGo(null);
    }

    /** Stops new DMA, waits for DMA in flight, drops the entries, unmaps. Returns whether anything was mapped. */
    boolean letGo(Invalidation inv) {
        DeviceMapping m;
        List<IommuTable.Entry> es;
        synchronized (this) {
            m = mapping;
            es = entries;
            mapping = null;
            entries = List.of();
            io.directmap.lang.Monitors.awaitUninterruptibly(this, () -> inFlight == 0);
        }
        SoftwareDevice device = binding.device();
        device.table().drop(es);
        if (m == null) return false;
        // Counted before the mapping is given back: whoever sees it dead sees the count too.
        if (inv != null) stats.invalidations.incrementAndGet();
        if (!vma.isClosed() || inv != null) vma.ops().deviceUnmap(vma, device.endpoint(), m);
        return true;
    }

    private static void pause() {
        pause(1);
    }

    private static void pause(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static long roundUpPage(long v) {
        long p = Process.PAGE_SIZE;
        return (v + p - 1) / p * p;
    }
}
