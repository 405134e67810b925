package io.directmap;

/** Which way a file system sends a range whose pages are in the page cache (dmap's --policy). */
public enum PathPolicy {
    /**
     * The default, the proposal's example: clean cached pages are read from the page cache (the
     * copy the CPU already paid for), the rest direct.
     */
    CACHE,
    /** Clean cached pages go direct too. Dirty pages are always read through the cache, since the blocks under them are stale. */
    DIRECT,
    /**
     * Measure both ways as they are used and send each range the faster way, counting what
     * evicting a hot page of cache costs ({@link DirectMap.Builder#evictedPageCostNanos}).
     */
    LEARN
}
