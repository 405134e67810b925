package io.directmap;

/** Who refused the direct path for a range: the proposal gives each layer a veto. */
public enum RefusedBy {
    /** The file system: the pages are cached or dirty, the range is a hole or unwritten, the file is shared. */
    FILESYSTEM("filesystem"),
    /** The block device: no peer-to-peer path to the device, no aperture left, a device that cannot be opened. */
    BLOCK_DEVICE("block_device"),
    /** A device that exports its memory for others to map. */
    EXPORTER("exporter"),
    /** The importing device itself: a flag it cannot honour, an all-or-nothing request that could not be met. */
    IMPORTER("importer");

    private final String label;

    RefusedBy(String label) { this.label = label; }

    /** The name used in dmap's tables and JSON ("filesystem", "block_device", ...). */
    public String label() { return label; }
}
