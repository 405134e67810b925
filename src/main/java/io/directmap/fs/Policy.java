package io.directmap.fs;

/**
 * The file system's settings for saying yes. cachedPages: what to do with clean cached pages
 * (the proposal's example refuses them, so the device reads the copy the CPU already paid for);
 * dirty pages are always refused, since the blocks under them are stale. learner, when present,
 * measures the direct and page-cache paths as they are used and sends each range the faster way
 * (see {@link PathLearner}).
 */
public record Policy(CachedPages cachedPages, PathLearner learner) {
    public enum CachedPages { REFUSE, ALLOW }

    public Policy(CachedPages cachedPages) {
        this(cachedPages, null);
    }

    public static Policy defaults() {
        return new Policy(CachedPages.REFUSE);
    }

    /** The mixed policy that learns, with the default price of an evicted page of hot cache. */
    public static Policy learning() {
        return new Policy(CachedPages.REFUSE, new PathLearner(PathLearner.DEFAULT_EVICTED_PAGE_NANOS));
    }
}
