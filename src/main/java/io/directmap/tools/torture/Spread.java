package io.directmap.tools.torture;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

/** p50, p99 and max of a set of samples (nearest rank), and how many there were. */
public record Spread(long p50, long p99, long max, long count) {
    static Spread of(long[] values) {
        if (values.length == 0) return new Spread(0, 0, 0, 0);
        long[] v = values.clone();
        Arrays.sort(v);
        return new Spread(rank(v, 0.50), rank(v, 0.99), v[v.length - 1], v.length);
    }

    static Spread of(List<Long> values) {
        return of(values.stream().mapToLong(Long::longValue).toArray());
    }

    private static long rank(long[] sorted, double q) {
        return sorted[Math.max(0, (int) Math.ceil(q * sorted.length) - 1)];
    }

    Map<String, Object> json() {
        return Torture.jsonMap("p50", p50, "p99", p99, "max", max, "count", count);
    }

    /** Samples added from several threads, kept as longs (no boxing per read). */
    static final class Samples {
        private long[] v = new long[1024];
        private int n;

        synchronized void add(long x) {
            if (n == v.length) v = Arrays.copyOf(v, n * 2);
            v[n++] = x;
        }

        synchronized long[] toArray() {
            return Arrays.copyOf(v, n);
        }
    }
}
