package io.directmap.fs;

/**
 * The file system's settings for saying yes. cachedPages: what to do with clean cached pages
 * (the proposal's example refuses them, so the device reads the copy the CPU already paid for);
 * dirty pages are always refused, since the blocks under them are stale.
 */
public record Policy(CachedPages cachedPages) {
    public enum CachedPages { REFUSE, ALLOW }

    public static Policy defaults() {
        return new Policy(CachedPages.REFUSE);
    }
}
