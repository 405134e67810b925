package io.directmap.fs;

import io.directmap.mm.Refusal;
import java.util.Optional;

/**
 * Whether a file system can hold a file's blocks in place for as long as a pin lives, in the manner
 * of swapfile.c's checks: one refusal per reason. Holding them means refusing every change that
 * could move or free them, and that is only possible where every such change goes through an open
 * for writing or a change of the file that the change watch sees (ext4, xfs: e4defrag and xfs_fsr
 * open the file for writing). btrfs moves a file's blocks on its own (balance, scrub's repair,
 * relocation of a block group) without anyone opening the file, so no refusal can hold them.
 */
final class PinCheck {
    private PinCheck() {}

    static Optional<Refusal> refusal(OpenFile file) {
        if (file.adapter() instanceof Adapters.BtrfsAdapter) {
            return Optional.of(new Refusal(FsReason.PIN_RELOCATABLE, file.path() + " is on btrfs at " + file.mountPoint()
                    + ": btrfs balance and scrub repair move its blocks without opening it; map it without --pin"));
        }
        return Optional.empty();
    }
}
