package io.directmap.mm;

/** The proposal's DEVICE_MAP_FLAG_* bits. */
public enum MapFlag {
    /** Return a dma_buf: the mapping's lifetime moves from the vma to the buffer. */
    PIN,
    /** The importer wants to write through the mapping. */
    WRITE,
    /** The importer wants to do atomic operations on the mapping. */
    SUPPORT_ATOMIC_OP
}
