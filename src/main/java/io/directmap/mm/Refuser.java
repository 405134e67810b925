package io.directmap.mm;

/**
 * Who said no to a device_map request: in the proposal, the filesystem decides by its own policy
 * and then the block device may refuse again; an exporter of device memory has the same veto over
 * its own mmap, and the importer itself refuses the rest of a range it wanted all or nothing of.
 */
public enum Refuser {
    /** The filesystem: its policy, or the file's layout (holes, inline data, the page cache). */
    FILESYSTEM("filesystem"),
    /** The block device below the filesystem: aperture, peer-to-peer path, alignment. */
    BLOCK_DEVICE("block_device"),
    /** The driver that exports device memory through a device file's mmap (device-to-device). */
    EXPORTER("exporter"),
    /** The importer: it asked for all or nothing, and part of the range was refused. */
    IMPORTER("importer");

    private final String label;

    Refuser(String label) { this.label = label; }

    /** {@return the name used in JSON and tables} */
    public String label() { return label; }
}
