package io.directmap.fault;

import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Switches fault points on and off, and counts how often each fired.
 *
 * <p>From the environment: {@code DMAP_FAULTS=point[:probability[:times]],...}, for example
 * {@code DMAP_FAULTS=read_eio:0.01,lease_thread_die:1:1} (EIO on 1% of direct reads; the lease
 * thread dies once). Probability defaults to 1 and times to unlimited. From a test:
 * {@code try (var f = Faults.enable(FaultPoint.READ_EIO, 1.0, 3)) { ... f.fired() ... }}.
 *
 * <p>A call site asks {@link #fire} where the real call would fail. With no point on, that is one
 * plain read of a volatile int, so fault points cost nothing on hot paths.
 */
public final class Faults {
    private static final FaultPoint[] POINTS = FaultPoint.values();
    private static final double[] probability = new double[POINTS.length];
    private static final AtomicLongArray remaining = new AtomicLongArray(POINTS.length);
    private static final AtomicLongArray fired = new AtomicLongArray(POINTS.length);
    private static volatile int enabled;     // how many points are on
    /** What was wrong with DMAP_FAULTS (then no point is on), or null. */
    private static final String environmentError;

    static {
        String spec = System.getenv("DMAP_FAULTS"), error = null;
        if (spec != null && !spec.isBlank()) {
            try {
                parse(spec).forEach(Faults::on);
            } catch (IllegalArgumentException e) {
                error = e.getMessage();
            }
        }
        environmentError = error;
    }

    /**
     * The points DMAP_FAULTS switched on, as it spells them (empty when none); throws when it could
     * not be read, with what is wrong and how to write it. A program calls this first.
     */
    public static String fromEnvironment() {
        if (environmentError != null) throw new IllegalArgumentException(environmentError);
        String spec = System.getenv("DMAP_FAULTS");
        return spec == null ? "" : spec.trim();
    }

    private Faults() {}

    /** One parsed entry of DMAP_FAULTS. */
    public record Setting(FaultPoint point, double probability, long times) {}

    /** Parses {@code point[:probability[:times]],...}; an error names the bad entry and the rule. */
    public static java.util.List<Setting> parse(String spec) {
        var out = new java.util.ArrayList<Setting>();
        for (String entry : spec.split(",")) {
            String e = entry.trim();
            if (e.isEmpty()) continue;
            String[] p = e.split(":");
            try {
                if (p.length > 3) throw new IllegalArgumentException("too many ':'");
                FaultPoint point = FaultPoint.named(p[0]);
                double prob = p.length > 1 ? Double.parseDouble(p[1]) : 1.0;
                if (!(prob >= 0 && prob <= 1)) throw new IllegalArgumentException("probability must be between 0 and 1");
                long times = p.length > 2 ? Long.parseLong(p[2]) : Long.MAX_VALUE;
                if (times < 1) throw new IllegalArgumentException("times must be at least 1");
                out.add(new Setting(point, prob, times));
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException("DMAP_FAULTS entry '" + e + "': " + ex.getMessage()
                        + " (write point[:probability[:times]], for example read_eio:0.01 or lease_thread_die:1:1)", ex);
            }
        }
        return out;
    }

    /** True when the failure at point should happen now (and counts it). */
    public static boolean fire(FaultPoint point) {
        if (enabled == 0) return false;
        int i = point.ordinal();
        double p = probability[i];
        if (p <= 0) return false;
        if (p < 1 && ThreadLocalRandom.current().nextDouble() >= p) return false;
        long left;
        do {
            left = remaining.get(i);
            if (left <= 0) return false;
        } while (left != Long.MAX_VALUE && !remaining.compareAndSet(i, left, left - 1));
        fired.incrementAndGet(i);
        return true;
    }

    /** How often point has fired since the program started. */
    public static long fired(FaultPoint point) { return fired.get(point.ordinal()); }

    /** True when point is switched on. */
    public static boolean isOn(FaultPoint point) { return probability[point.ordinal()] > 0 && remaining.get(point.ordinal()) > 0; }

    /**
     * Switches point on until the returned scope is closed; times bounds how often it fires
     * (Long.MAX_VALUE for no bound). Scopes of one point do not nest.
     */
    public static Scope enable(FaultPoint point, double probability, long times) {
        Scope s = new Scope(point, fired(point));
        on(new Setting(point, probability, times));
        return s;
    }

    /** As above, firing every time. */
    public static Scope enable(FaultPoint point) { return enable(point, 1.0, Long.MAX_VALUE); }

    private static synchronized void on(Setting s) {
        int i = s.point().ordinal();
        boolean wasOn = probability[i] > 0;
        remaining.set(i, s.times());
        probability[i] = s.probability();
        if (!wasOn && s.probability() > 0) enabled = enabled + 1;
        else if (wasOn && s.probability() <= 0) enabled = enabled - 1;
    }

    private static synchronized void off(FaultPoint point) {
        int i = point.ordinal();
        if (probability[i] > 0) enabled = enabled - 1;
        probability[i] = 0;
        remaining.set(i, 0);
    }

    /** A point switched on for a while; closing it switches the point off. */
    public static final class Scope implements AutoCloseable {
        private final FaultPoint point;
        private final long firedBefore;
        private final AtomicLong closed = new AtomicLong();

        private Scope(FaultPoint point, long firedBefore) {
            this.point = point;
            this.firedBefore = firedBefore;
        }

        /** How often the point fired while this scope was open. */
        public long fired() { return Faults.fired(point) - firedBefore; }

        @Override
        public void close() {
            if (closed.getAndIncrement() == 0) off(point);
        }
    }
}
