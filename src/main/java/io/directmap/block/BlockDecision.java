package io.directmap.block;

import io.directmap.mm.Refusal;
import java.nio.file.Path;

/** The block device's answer for one device range. */
public sealed interface BlockDecision {
    /**
     * The importer may DMA length bytes at busAddress, which reach device at offset. The
     * length is reserved from the device's aperture until released.
     */
    record Granted(BlockDevice device, long offset, long length, long busAddress) implements BlockDecision {}

    /** No, for this reason. */
    record Refused(Refusal refusal) implements BlockDecision {}

    /**
     * A loop device: these bytes are backingFile's bytes from backingOffset. The file system maps
     * that file again; for what it refuses there, it asks this device itself ({@link BlockLayer#decideHere}).
     */
    record Redirect(Path backingFile, long backingOffset, BlockDevice through, long offset) implements BlockDecision {}
}
