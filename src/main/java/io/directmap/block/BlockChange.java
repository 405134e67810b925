package io.directmap.block;

/** Why a block device takes back its peer mappings on its own (the proposal's open question 1). */
public enum BlockChange {
    /** The device shrank (losetup -c, a resized disk): ranges past the new end are gone. */
    SHRUNK("the device shrank below the range"),
    /** Detach was asked (losetup -d) and waits for the last user: the device is going away. */
    DETACHING("the device is being detached"),
    /** The device or its backing file is gone. */
    REMOVED("the device went away"),
    /** What backs the device changed (a loop device's backing file or offset). */
    BACKING_CHANGED("what backs the device changed"),
    /** A direct read from the range failed. */
    IO_ERROR("a direct read from the range failed"),
    /** The aperture was full and reclaims: the least recently used window is taken back for a new mapping. */
    APERTURE_RECLAIMED("the device took the aperture window back for a newer mapping (least recently used first)");

    private final String summary;

    BlockChange(String summary) { this.summary = summary; }

    public String summary() { return summary; }

    public String code() { return name().toLowerCase(java.util.Locale.ROOT); }
}
