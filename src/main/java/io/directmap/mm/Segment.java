package io.directmap.mm;

/** One part of a device_map answer, in file offsets [start, end) of the vma. */
public sealed interface Segment {
    long start();
    long end();

    default long length() { return end() - start(); }

    /**
     * The device may DMA these bytes from peer at deviceOffset, which its table reaches at
     * busAddress (the proposal's dma_addr_t). route says how the exporter followed the file's
     * bytes to that peer ("loop0 > nvme0n1").
     */
    record Direct(long start, long end, Peer peer, long deviceOffset, long busAddress, String route) implements Segment {}

    /** The device must fault these pages through the page cache, because of refusal. */
    record Fallback(long start, long end, Refusal refusal) implements Segment {}
}
