package io.directmap.fs;

import java.util.Locale;

/**
 * The file system's settings for saying yes. cachedPages: what to do with clean cached pages
 * (the proposal's example refuses them, so the device reads the copy the CPU already paid for);
 * dirty pages are always refused, since the blocks under them are stale. learner, when present,
 * measures the direct and page-cache paths as they are used and sends each range the faster way
 * (see {@link PathLearner}). rangeEvents: hear of other processes' changes with their range
 * (fanotify pre-content events, where the kernel, the file system and root allow them), so a
 * change takes back only the mappings it overlaps; false holds writers back with a read lease,
 * which the kernel breaks at open() without a range, so every mapping of the file is taken back.
 */
public record Policy(CachedPages cachedPages, PathLearner learner, boolean rangeEvents) {
    public enum CachedPages { REFUSE, ALLOW }

    /** The system property that switches range events off for a whole JVM (tests): {@code false} or {@code off}. */
    public static final String RANGE_EVENTS_PROPERTY = "directmap.rangeEvents";
    /** The environment variable that does the same for a process (the CLI, its children): {@code off}. */
    public static final String RANGE_EVENTS_ENV = "DMAP_RANGE_EVENTS";

    public Policy(CachedPages cachedPages) {
        this(cachedPages, null, rangeEventsByDefault());
    }

    public Policy(CachedPages cachedPages, PathLearner learner) {
        this(cachedPages, learner, rangeEventsByDefault());
    }

    public static Policy defaults() {
        return new Policy(CachedPages.REFUSE);
    }

    /** The mixed policy that learns, with the default price of an evicted page of hot cache. */
    public static Policy learning() {
        return new Policy(CachedPages.REFUSE, new PathLearner(PathLearner.DEFAULT_EVICTED_PAGE_NANOS));
    }

    /** This policy with range events on or off (off: leases, whole-file invalidation). */
    public Policy withRangeEvents(boolean on) {
        return new Policy(cachedPages, learner, on);
    }

    /**
     * On unless {@value #RANGE_EVENTS_PROPERTY} is false/off or {@value #RANGE_EVENTS_ENV} is
     * off/false/0 (the property wins when both are set).
     */
    public static boolean rangeEventsByDefault() {
        String p = System.getProperty(RANGE_EVENTS_PROPERTY);
        if (p != null && !p.isBlank()) return !isOff(p);
        String e = System.getenv(RANGE_EVENTS_ENV);
        return e == null || !isOff(e);
    }

    private static boolean isOff(String v) {
        return switch (v.strip().toLowerCase(Locale.ROOT)) {
            case "off", "false", "0", "no" -> true;
            default -> false;
        };
    }
}
