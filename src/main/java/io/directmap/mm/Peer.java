package io.directmap.mm;

import io.directmap.sys.FileHandle;
import java.nio.file.Path;

/**
 * What a direct segment's bytes are read from: the proposal's "peer" at the other end of a
 * device_map answer, whose bus address the importer programs into its table. Today a block device
 * (read through its O_DIRECT descriptor); an exporter's device memory, or anything else readable
 * through a descriptor (a memfd, a file), fits the same shape.
 */
public interface Peer {
    /** loop0, nvme0n1: the name messages give. */
    String name();

    /** The node it is read through: /dev/loop0. */
    Path node();

    /** Offsets and lengths of a direct read must be multiples of this (a block device's logical block size; 1 for none). */
    int readAlignment();

    /** The descriptor the importer's DMA engine reads through (pread, io_uring), between begin and end. */
    FileHandle directHandle();

    /**
     * A DMA is about to read through {@link #directHandle()}: the descriptor stays open until
     * {@link #endDirectRead()}, even if every grant was taken back meanwhile. False when it was
     * already closed: then nothing may be read through it.
     */
    boolean beginDirectRead();

    /** The DMA begun with {@link #beginDirectRead()} has no read in flight any more. */
    void endDirectRead();
}
