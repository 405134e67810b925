package io.directmap.fs;

import io.directmap.block.BlockDecision;
import io.directmap.block.BlockDevice;
import io.directmap.mm.Refusal;

/** One part of a device_map answer, in file offsets [start, end). */
public sealed interface Segment {
    long start();
    long end();

    default long length() { return end() - start(); }

    /**
     * The device may DMA these bytes from grant.device() at grant.offset(), bus address
     * grant.busAddress(). route says how the file's blocks were followed to that device.
     */
    record Direct(long start, long end, BlockDecision.Granted grant, String route) implements Segment {
        public BlockDevice device() { return grant.device(); }
        public long deviceOffset() { return grant.offset(); }
        public long busAddress() { return grant.busAddress(); }
    }

    /** The device must fault these pages through the page cache, because of refusal. */
    record Fallback(long start, long end, Refusal refusal) implements Segment {}
}
