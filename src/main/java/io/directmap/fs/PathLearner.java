package io.directmap.fs;

import io.directmap.mm.Transfer;
import java.util.Locale;

/**
 * The mixed policy that learns. Where both ways are possible (a clean range: read from the block
 * device directly, or through the page cache), it keeps a moving average of what each way has
 * delivered here, and sends the next range the cheaper way. The page cache's price for a cold
 * range counts the hot pages its new pages would push out: evictedPageNanos per page, what
 * reading such a page back would cost later. Every so often it tries the other way, so that a
 * change in the machine (another tenant, a warmer host cache) is noticed: every 16th decision,
 * or every 128th when the other way is more than twice as slow.
 * This is the GDS "compat mode is often faster" case made a decision instead of a setting.
 */
public final class PathLearner {
    /** About what re-reading a 4 KiB page at 4 GiB/s costs. */
    public static final double DEFAULT_EVICTED_PAGE_NANOS = 1_000;
    private static final double WEIGHT = 0.3;
    private static final int EXPLORE_EVERY = 16;

    /** What to do with a range, and why, in words for explain. */
    public record Choice(boolean direct, String why) {}

    private final double evictedPageNanos;
    private final double[] nanosPerByte = {Double.NaN, Double.NaN, Double.NaN};
    private final long[] samples = new long[3];
    private long decisions;

    public PathLearner(double evictedPageNanos) {
        this.evictedPageNanos = evictedPageNanos;
    }

    /** A device read bytes of one way in nanos. */
    public synchronized void observe(Transfer way, long bytes, long nanos) {
        if (bytes <= 0 || nanos <= 0) return;
        double v = nanos / (double) bytes;
        int i = way.ordinal();
        nanosPerByte[i] = Double.isNaN(nanosPerByte[i]) ? v : (1 - WEIGHT) * nanosPerByte[i] + WEIGHT * v;
        samples[i]++;
    }

    /** GiB/s learned for way, NaN before the first sample. */
    public synchronized double gibPerS(Transfer way) {
        double v = nanosPerByte[way.ordinal()];
        return Double.isNaN(v) ? Double.NaN : 1e9 / v / (1L << 30);
    }

    /** A range that is not in the page cache: direct, or through the cache (which then grows by it)? */
    synchronized Choice chooseCold(long bytes) {
        return choose(Transfer.CACHE_COLD, bytes, bytes / io.directmap.sys.Process.PAGE_SIZE * evictedPageNanos);
    }

    /** A range that is in the page cache: copy it from there, or read the blocks directly? */
    synchronized Choice chooseCached(long bytes) {
        return choose(Transfer.CACHE_HOT, bytes, 0);
    }

    private Choice choose(Transfer cache, long bytes, double pollutionNanos) {
        decisions++;
        double d = nanosPerByte[Transfer.DIRECT.ordinal()], c = nanosPerByte[cache.ordinal()];
        if (Double.isNaN(d)) return new Choice(true, "learning: the direct path is not measured yet, trying it");
        if (Double.isNaN(c)) return new Choice(false, "learning: the " + cache.label() + " path is not measured yet, trying it");
        double directCost = d * bytes, cacheCost = c * bytes + pollutionNanos;
        boolean direct = directCost <= cacheCost;
        // Look at the slower way again now and then; rarely when it is far behind (each look costs).
        double gap = Math.max(directCost, cacheCost) / Math.max(1e-9, Math.min(directCost, cacheCost));
        if (decisions % (gap > 2 ? EXPLORE_EVERY * 8 : EXPLORE_EVERY) == 0) {
            return new Choice(!direct, String.format(Locale.ROOT, "learning: checking the slower way again (direct %.2f GiB/s, %s %.2f GiB/s)",
                    gibPerS(Transfer.DIRECT), cache.label(), gibPerS(cache)));
        }
        String why = String.format(Locale.ROOT, "learned: direct %.2f GiB/s, %s %.2f GiB/s%s", gibPerS(Transfer.DIRECT), cache.label(),
                gibPerS(cache), pollutionNanos > 0 ? String.format(Locale.ROOT, " plus %.0f ns for each hot page it would evict",
                        evictedPageNanos) : "");
        return new Choice(direct, why);
    }
}
