package io.directmap.mm;

/**
 * The ways an importer's bytes can travel, as a learning policy measures them: straight from the
 * peer (the proposal's direct mapping), or through the page cache when the range was cold (the
 * read fills the cache) or already hot (a copy). An importer reports each transfer through
 * {@link VmOperations#observe}.
 */
public enum Transfer {
    /** Straight from the peer: the proposal's direct mapping. */
    DIRECT("direct"),
    /** Through the page cache, from a range that was not cached: the read fills the cache. */
    CACHE_COLD("page cache, cold"),
    /** Through the page cache, from pages already cached: a copy. */
    CACHE_HOT("page cache, hot");


    private final String label;

    Transfer(String label) { this.label = label; }

    /** {@return the way in words, for explain: "page cache, cold"} */
    public String label() { return label; }
}
