package io.directmap.fs;

import io.directmap.block.BlockDevice;
import io.directmap.block.BlockLayer;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.Refusal;
import io.directmap.sys.SysException;
import java.io.IOException;
import java.util.Map;
import java.util.Optional;

/**
 * Follows a loop device to the file it reads: that file open, identity-checked against the inode
 * the kernel reads (never trusted by name), and kept open by inode until {@link #close}; or the
 * refusal that makes following pointless (the backing file system's device is unreadable).
 */
final class LoopFollower {
    private final BlockLayer blocks;
    // Keyed by the inode a loop device reads (LOOP_GET_STATUS64), never by its name: two loop devices
    // over two files that had one name at different times are two entries.
    private final Map<BackingId, Below> below = new java.util.concurrent.ConcurrentHashMap<>();
    private final Map<BackingId, OpenFile> backingFiles = new java.util.concurrent.ConcurrentHashMap<>();

    private record BackingId(int major, int minor, long inode) {
        static BackingId of(io.directmap.sys.BlockIoctl.LoopStatus s) {
            return new BackingId(s.backingDevMajor(), s.backingDevMinor(), s.backingInode());
        }
    }

    LoopFollower(BlockLayer blocks) {
        this.blocks = blocks;
    }

    /**
     * The refusal every range of a backing file would get when its file system's block device is
     * already known to be unreadable: the loop device is then asked at once, without opening and
     * mapping the backing file again on every fault.
     */
    Optional<Refusal> unreadableBelow(BlockDevice loop) {
        // A fault over many extents asks once per extent: remember the answer briefly. Remembering a
        // refusal too long only refuses longer (the safe side); a device that changes is seen in 100 ms.
        long now = System.nanoTime();
        BackingId id = BackingId.of(loop.backing().orElseThrow().status());
        Below b = below.get(id);
        if (b != null && now - b.at() < 100_000_000L) return b.refusal();
        Optional<Refusal> r = lookUpUnreadableBelow(loop.backing().orElseThrow().status());
        below.put(id, new Below(r, now));
        return r;
    }

    private record Below(Optional<Refusal> refusal, long at) {}

    /** The backing file's device, as the loop device's kernel status names it (not the path's st_dev). */
    private Optional<Refusal> lookUpUnreadableBelow(io.directmap.sys.BlockIoctl.LoopStatus status) {
        Optional<io.directmap.block.BlockDevice> dev = blocks.known(status.backingDevMajor(), status.backingDevMinor());
        if (dev.isPresent() && dev.get().openFailure().isPresent()) {
            return Optional.of(new Refusal(io.directmap.block.BlockReason.UNREADABLE, dev.get().devNode()
                    + ": open O_DIRECT failed with " + dev.get().openFailure().get().shortReason()));
        }
        return Optional.empty();
    }

    /**
     * The backing file of a loop device, kept open while the name still leads to the inode the
     * kernel reads (LOOP_GET_STATUS64's lo_device and lo_inode); null when it leads elsewhere (the
     * file was replaced or renamed, or this process sees another mount namespace): its blocks are
     * not the loop device's, and the loop device itself is asked instead.
     */
    OpenFile backing(BlockDevice loop) throws IOException {
        BlockDevice.Backing b = loop.backing().orElseThrow();
        BackingId id = BackingId.of(b.status());
        OpenFile f = backingFiles.get(id);
        if (f != null) return f;   // the very inode: open until close(), never closed under another lookup
        OpenFile fresh = openIfBacking(b.file(), b.status());
        if (fresh == null) {
            // Not by its name (unnamed, unlinked, replaced): through a descriptor of ours on that very inode, if any.
            var st = b.status();
            var held = io.directmap.sys.Openers.heldBySelf(st.backingDevMajor(), st.backingDevMinor(), st.backingInode());
            if (held.isPresent()) fresh = openIfBacking(held.get(), st);
        }
        if (fresh == null) return null;
        OpenFile raced = backingFiles.putIfAbsent(id, fresh);
        if (raced == null) return fresh;
        fresh.close();            // another fault opened it first: use that one
        return raced;
    }

    /** The file at path, open, if it is the inode the loop device reads; else null. */
    private static OpenFile openIfBacking(java.nio.file.Path path, io.directmap.sys.BlockIoctl.LoopStatus status) throws IOException {
        OpenFile f;
        try {
            f = OpenFile.open(path);
        } catch (InvalidRequestException e) {
            return null; // no such file, or not a regular one, by that name: not the backing file
        }
        if (isBacking(f.stat(), status)) return f;
        f.close();
        return null;
    }

    private static boolean isBacking(io.directmap.sys.Statx.Info st, io.directmap.sys.BlockIoctl.LoopStatus status) {
        return st.devMajor() == status.backingDevMajor() && st.devMinor() == status.backingDevMinor()
                && st.inode() == status.backingInode();
    }

    static Refusal notTheBackingFile(BlockDevice loop) {
        BlockDevice.Backing b = loop.backing().orElseThrow();
        return new Refusal(io.directmap.block.BlockReason.IDENTITY_MISMATCH, b.file() + " is not the file " + loop.name()
                + " reads (" + b.status().describe() + "): it was deleted or replaced, or this process sees another mount"
                + " namespace; " + loop.name() + " itself is read instead");
    }

    /** Closes the backing files kept open. */
    void close() throws SysException {
        io.directmap.lang.Closer<SysException> closer = io.directmap.lang.Closer.keeping(SysException.class);
        closer.closeEach(backingFiles.values(), OpenFile::close);
        backingFiles.clear();
        closer.throwIfFailed();
    }
}
