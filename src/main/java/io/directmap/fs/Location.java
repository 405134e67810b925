package io.directmap.fs;

import io.directmap.block.BlockDevice;
import io.directmap.mm.Refusal;

/** Where a run of the file system's physical addresses lies: on a device, or nowhere we may use. */
sealed interface Location {
    /** The first length bytes asked for are at offset on device (length may be less than asked). */
    record Placed(BlockDevice device, long offset, long length) implements Location {}

    /** The first length bytes asked for cannot be placed. */
    record Unplaceable(Refusal refusal, long length) implements Location {}

    /** Maps physical addresses of one file system to devices; made once per device_map call. */
    @FunctionalInterface
    interface Locator {
        Location locate(long physical, long length);
    }
}
