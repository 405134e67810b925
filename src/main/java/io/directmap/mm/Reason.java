package io.directmap.mm;

import java.util.Optional;

/**
 * Why a range is not mapped directly (the proposal: "the filesystem can decide by its own policy,
 * for instance no, the range is in the page cache"). Each party that can refuse has its own enum
 * of reasons implementing this (the filesystem's {@code fs.FsReason}, the block device's
 * {@code block.BlockReason}, an exporter's own), so a party owns its vocabulary and every importer
 * handles all of them alike.
 */
public interface Reason {
    /** {@return who refused} */
    Refuser refuser();

    /** {@return a stable identifier for programs: "page_cached", "no_p2p_path"} */
    String code();

    /** {@return one line for people: "pages are in the page cache"} */
    String summary();

    /**
     * How the bytes of a range refused for this reason will travel instead, when the refuser knows
     * (pages already in the page cache, or a cold range the policy sends through the cache): what
     * the importer reports through {@link VmOperations#observe} so that a learning policy can compare
     * the ways. Empty (the default) when the refusal says nothing about that.
     *
     * @return the way the refused bytes travel, or empty
     */
    default Optional<Transfer> transfer() { return Optional.empty(); }
}
