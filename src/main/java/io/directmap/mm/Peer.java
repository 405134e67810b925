package io.directmap.mm;

import java.nio.file.Path;

/**
 * What a direct segment's bytes are read from: the proposal's "peer" at the other end of a
 * device_map answer, whose bus address the importer programs into its table. Today a block device
 * (read through its O_DIRECT descriptor); an exporter's device memory, or anything else readable
 * through a descriptor (a memfd, a file), fits the same shape.
 */
public interface Peer {
    /** {@return the name messages give: loop0, nvme0n1} */
    String name();

    /** {@return the node it is read through: /dev/loop0} */
    Path node();

    /** {@return what offsets and lengths of a direct read must be multiples of (a block device's logical block size; 1 for none)} */
    int readAlignment();

    /**
     * The descriptor the importer's DMA engine reads through (pread, io_uring), valid only between
     * a {@link #beginDirectRead()} that returned true and its {@link #endDirectRead()}: the number
     * may be given to another file once the bracket ends, so no one keeps it past that.
     *
     * @return the open descriptor's number
     * @throws IllegalStateException when no direct read is begun, or the peer has nothing to read through
     */
    int descriptor();

    /**
     * A DMA is about to read through {@link #descriptor()}: the descriptor stays open until
     * {@link #endDirectRead()}, even if every grant was taken back meanwhile.
     *
     * @return true when the descriptor is open for the DMA; false when it was already closed:
     *         then nothing may be read through it (and no {@link #endDirectRead()} follows)
     */
    boolean beginDirectRead();

    /** The DMA begun with {@link #beginDirectRead()} has no read in flight any more. */
    void endDirectRead();

    /**
     * The descriptor a WRITE mapping's DMA writes through (O_DIRECT, opened for writing), valid
     * between {@link #beginDirectRead()} and {@link #endDirectRead()} as {@link #descriptor()} is.
     * A peer grants a WRITE mapping only when it has one.
     *
     * @return the open descriptor's number
     * @throws IllegalStateException when no DMA is begun, or the peer cannot be written (the default)
     */
    default int writeDescriptor() {
        throw new IllegalStateException(name() + " cannot be written directly");
    }

    /**
     * Makes what was written through {@link #writeDescriptor()} durable (a block device: fdatasync,
     * which flushes its write cache). Call it between {@link #beginDirectRead()} and
     * {@link #endDirectRead()}.
     *
     * @throws java.io.IOException when the flush failed (the message names the device and the errno)
     */
    default void flushWrites() throws java.io.IOException { }
}
