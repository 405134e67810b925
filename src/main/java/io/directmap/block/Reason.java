package io.directmap.block;

/**
 * Why a range is not mapped directly. Each layer that can refuse has its own enum of reasons
 * implementing this ({@link BlockReason} here, the file system's in {@code fs}), so a layer owns
 * its vocabulary and the layers above handle all of them alike.
 */
public interface Reason {
    /** Who refused. */
    Layer layer();

    /** A stable identifier for programs: "page_cached", "no_p2p_path". */
    String code();

    /** One line for people: "pages are in the page cache". */
    String summary();
}
