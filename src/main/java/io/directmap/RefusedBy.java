package io.directmap;

import io.directmap.mm.Refuser;

/**
 * Who refused the direct path for a range: the proposal gives each layer a veto. The facade's
 * name for the contract's {@link Refuser}, one constant for each of its constants with the same
 * name and label, so a program that maps and reads imports only this package.
 */
public enum RefusedBy {
    /** The file system: the pages are cached or dirty, the range is a hole or unwritten, the file is shared. */
    FILESYSTEM(Refuser.FILESYSTEM),
    /** The block device: no peer-to-peer path to the device, no aperture left, a device that cannot be opened. */
    BLOCK_DEVICE(Refuser.BLOCK_DEVICE),
    /** A device that exports its memory for others to map. */
    EXPORTER(Refuser.EXPORTER),
    /** The importing device itself: a flag it cannot honour, an all-or-nothing request that could not be met. */
    IMPORTER(Refuser.IMPORTER);

    private final Refuser refuser;

    RefusedBy(Refuser refuser) { this.refuser = refuser; }

    /**
     * The name used in dmap's tables and JSON ("filesystem", "block_device", ...): the contract's.
     *
     * @return the refuser's label, as {@link Refuser#label()} gives it
     */
    public String label() { return refuser.label(); }

    /** The constant for the contract's refuser. */
    static RefusedBy of(Refuser refuser) {
        for (RefusedBy b : values()) {
            if (b.refuser == refuser) return b;
        }
        throw new IllegalArgumentException(refuser + " has no RefusedBy: add one for each mm.Refuser");
    }

    /** The contract's refuser this stands for. */
    Refuser refuser() { return refuser; }
}
