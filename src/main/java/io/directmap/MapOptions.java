package io.directmap;

/**
 * How {@link Device#map(java.nio.file.Path, MapOptions)} maps a file: which range, whether the
 * direct path must take all of it, and the window size. Immutable; each method returns a copy.
 *
 * <pre>{@code
 * gpu.map(file, MapOptions.defaults().range(0, 1 << 30).allOrNothing(true))
 * }</pre>
 *
 * @param start        the first byte of the range (0 by default)
 * @param end          one past its last byte; -1 (the default) means the end of the file
 * @param allOrNothing the proposal's contract: each window goes direct whole or falls back whole
 *                     (by default each part goes direct where it can, through the page cache elsewhere)
 * @param windowBytes  the range is cut into windows of this size, each mapped on first read and
 *                     let go when the file changes under it; 0 (the default) means 8 MiB, or the
 *                     smallest window the range allows when that is larger (at most 16,384 windows)
 */
public record MapOptions(long start, long end, boolean allOrNothing, long windowBytes) {
    /**
     * Refuses an end below -1: -1 alone means the end of the file.
     *
     * @throws IllegalArgumentException when end is below -1
     */
    public MapOptions {
        if (end < -1) {
            throw new IllegalArgumentException("range end " + end + " is negative; give a file offset >= 0, or -1 for the end of the file");
        }
    }

    /** The CLI's window: 8 MiB. */
    static final long DEFAULT_WINDOW = 8L << 20;

    /** {@return options for the whole file, direct where possible, 8 MiB windows} */
    public static MapOptions defaults() {
        return new MapOptions(0, -1, false, 0);
    }

    /**
     * Only [start, end) of the file.
     *
     * @param start the first file offset
     * @param end the file offset after the last one; -1 for the end of the file
     * @return these options with that range
     * @throws IllegalArgumentException when end is below -1
     */
    public MapOptions range(long start, long end) {
        return new MapOptions(start, end, allOrNothing, windowBytes);
    }

    /**
     * Whether each window is direct whole or not at all.
     *
     * @param wholeWindows true: each window direct whole or not at all; false (the default): direct where it can be
     * @return these options with that choice
     */
    public MapOptions allOrNothing(boolean wholeWindows) {
        return new MapOptions(start, end, wholeWindows, windowBytes);
    }

    /**
     * Windows of bytes.
     *
     * @param bytes a positive multiple of the page size (checked at {@link Device#map(java.nio.file.Path, MapOptions)})
     * @return these options with that window
     */
    public MapOptions window(long bytes) {
        return new MapOptions(start, end, allOrNothing, bytes);
    }
}
