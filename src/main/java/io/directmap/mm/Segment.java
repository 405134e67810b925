package io.directmap.mm;

/** One part of a device_map answer, in file offsets [start, end) of the vma. */
public sealed interface Segment {
    /** {@return the first file offset of the part} */
    long start();

    /** {@return the file offset after the last byte of the part} */
    long end();

    /** {@return the bytes in the part} */
    default long length() { return end() - start(); }

    /**
     * The device may DMA these bytes from peer at deviceOffset, which its table reaches at
     * busAddress (the proposal's dma_addr_t). route says how the exporter followed the file's
     * bytes to that peer ("loop0 > nvme0n1").
     *
     * @param start the first file offset
     * @param end the file offset after the last byte
     * @param peer what the bytes are read from
     * @param deviceOffset where start is on the peer
     * @param busAddress where the importer's table reaches deviceOffset
     * @param route the path followed to the peer, for messages
     */
    record Direct(long start, long end, Peer peer, long deviceOffset, long busAddress, String route) implements Segment {}

    /**
     * The device must fault these pages through the page cache, because of refusal.
     *
     * @param start the first file offset
     * @param end the file offset after the last byte
     * @param refusal who refused and why
     */
    record Fallback(long start, long end, Refusal refusal) implements Segment {}
}
