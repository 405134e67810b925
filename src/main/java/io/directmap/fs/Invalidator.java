package io.directmap.fs;

import io.directmap.mm.Invalidation;
import io.directmap.mm.MappingOwner;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * Takes mappings back: tells every owner once (again if it throws, bounded), then releases the
 * mappings, then reports (the JFR event, the listeners such as dmap watch, the count). An owner
 * that never acknowledges has its mappings revoked without it, and the failure names it.
 */
final class Invalidator {
    private final AtomicLong invalidations = new AtomicLong();
    private final List<Consumer<InvalidationReport>> listeners = new CopyOnWriteArrayList<>();
    /** Releases one mapping (device_unmap): its grants, its tracking entry, its lease when the last goes. */
    private final Consumer<FileMapping> unmap;

    Invalidator(Consumer<FileMapping> unmap) {
        this.unmap = unmap;
    }

    /** Called for every invalidation, after the owners acknowledged (dmap watch, counters). */
    void addListener(Consumer<InvalidationReport> l) {
        listeners.add(l);
    }

    void removeListener(Consumer<InvalidationReport> l) {
        listeners.remove(l);
    }

    /** What an invalidation did, and the owners' failures (null when every owner acknowledged). */
    record Outcome(InvalidationReport report, IllegalStateException failure) {}

    /** For callers with no one to throw to (a lease break, a read's re-check, a block device): logs failures. */
    InvalidationReport invalidateLogging(java.nio.file.Path path, List<FileMapping> mappings, Invalidation inv) {
        Outcome o = invalidate(path, mappings, inv);
        if (o.failure() != null) log(o.failure().getMessage(), o.failure());
        return o.report();
    }

    Outcome invalidate(java.nio.file.Path path, List<FileMapping> mappings, Invalidation inv) {
        Map<MappingOwner, Boolean> owners = new IdentityHashMap<>();
        int n = 0;
        for (FileMapping m : mappings) {
            if (!m.isLive()) continue;
            n++;
            owners.put(m.owner(), true);
        }
        if (io.directmap.fault.Faults.fire(io.directmap.fault.FaultPoint.SKIP_INVALIDATE)) {
            // The fault: nobody is told and nothing is taken back, as a file system that forgot to
            // invalidate. The coherence torture must then find stale blocks (it checks the checker).
            return new Outcome(new InvalidationReport(path, inv, 0, 0, 0), null);
        }
        List<Throwable> failed = new ArrayList<>();
        for (MappingOwner o : owners.keySet()) {
            Throwable t = tell(o, inv, path);
            if (t != null) failed.add(t);
        }
        // Only now release: every owner acknowledged, or was revoked (its mappings retired here).
        for (FileMapping m : mappings) {
            try {
                unmap.accept(m);
            } catch (RuntimeException e) {
                failed.add(e);
            }
        }
        long ack = System.nanoTime() - inv.raisedNanos();
        InvalidationReport report = new InvalidationReport(path, inv, n, owners.size(), ack);
        invalidations.incrementAndGet();
        InvalidationEvent ev = new InvalidationEvent();
        if (ev.isEnabled()) {
            ev.file = path.toString();
            ev.start = inv.start();
            ev.end = inv.end();
            ev.cause = inv.cause().code();
            ev.detail = inv.detail();
            ev.heldBack = inv.heldBack();
            ev.mappings = n;
            ev.ackNanos = ack;
            ev.commit();
        }
        for (Consumer<InvalidationReport> l : listeners) {
            try {
                l.accept(report);
            } catch (RuntimeException e) {
                log("an invalidation listener failed on " + path + ": " + e, e);
            }
        }
        if (failed.isEmpty()) return new Outcome(report, null);
        IllegalStateException failure = new IllegalStateException(path + " " + inv + ": " + failed.size() + " of "
                + owners.size() + " owners did not let go after " + io.directmap.mm.Acknowledge.TRIES + " tries (or a release failed); their "
                + "mappings were revoked without them (no read through them is delivered) and released; fix or restart "
                + "the importer (the suppressed exceptions say what it threw)");
        failed.forEach(failure::addSuppressed);
        return new Outcome(report, failure);
    }

    /** Tells owner o, again if it throws (bounded); null once it acknowledged, else what it threw. */
    private static Throwable tell(MappingOwner o, Invalidation inv, java.nio.file.Path path) {
        return io.directmap.mm.Acknowledge.until(() -> o.invalidate(inv));
    }

    /** One line on stderr (the stack trace too with DMAP_DEBUG set), for failures no caller can be told of. */
    private static void log(String message, Throwable t) {
        System.err.println("dmap: " + message);
        if (t != null && System.getenv("DMAP_DEBUG") != null) t.printStackTrace();
    }

    /** How many invalidations this file system has made. */
    long count() { return invalidations.get(); }
}
