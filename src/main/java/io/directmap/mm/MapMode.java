package io.directmap.mm;

/** How an importer takes a device_map answer that is direct for only part of the range. */
public enum MapMode {
    /** Direct where granted, the page cache elsewhere. */
    MIXED,
    /** The proposal's contract: direct for the whole range, or fall back entirely. */
    ALL_OR_NOTHING
}
