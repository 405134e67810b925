package io.directmap.block;

import io.directmap.mm.Reason;
import io.directmap.mm.Refuser;
import java.util.Locale;

/** The block device's own refusals, after the file system has agreed. */
public enum BlockReason implements Reason {
    UNREADABLE("the block device cannot be opened for direct I/O"),
    MISALIGNED("the range is not aligned to the device's logical block size"),
    BEYOND_DEVICE("the range lies past the end of the device"),
    READ_ONLY("the device is read-only and the importer asked to write"),
    NOT_WRITABLE("the block device cannot be opened for writing with direct I/O"),
    APERTURE_EXHAUSTED("the device's BAR aperture has no room left"),
    NO_P2P_PATH("no peer-to-peer path between the device and the importer"),
    NO_ATOMICS_ON_PATH("the path to the importer does not carry PCIe atomics"),
    STACKING_UNSUPPORTED("the device is stacked in a way that cannot be seen through"),
    GOING_AWAY("the device is being detached (losetup -d) or went away; it takes its mappings back"),
    IDENTITY_MISMATCH("the name leads to another device or file than the one the kernel reads");

    private final String summary;

    BlockReason(String summary) { this.summary = summary; }

    @Override public Refuser refuser() { return Refuser.BLOCK_DEVICE; }
    @Override public String code() { return name().toLowerCase(Locale.ROOT); }
    @Override public String summary() { return summary; }
}
