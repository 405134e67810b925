package io.directmap.block;

/** Who said no: the proposal gives the filesystem and then the block device each a veto. */
public enum Layer {
    FILESYSTEM("filesystem"),
    BLOCK_DEVICE("block_device"),
    IMPORTER("importer");

    private final String label;

    Layer(String label) { this.label = label; }

    /** The name used in JSON and tables. */
    public String label() { return label; }
}
