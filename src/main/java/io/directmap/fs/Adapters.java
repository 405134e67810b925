package io.directmap.fs;

import io.directmap.block.BlockDevice;
import io.directmap.block.BlockLayer;
import io.directmap.mm.Refusal;
import io.directmap.sys.Btrfs;
import io.directmap.sys.InodeFlags;
import io.directmap.sys.StatFs;
import io.directmap.sys.Statx;
import io.directmap.sys.SysException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/** The adapters, one per file system type, and the choice among them by f_type. */
final class Adapters {
    private Adapters() {}

    static FsAdapter forType(long magic, String mountFsType) {
        if (magic == StatFs.EXT4_SUPER_MAGIC) return new Ext4();
        if (magic == StatFs.XFS_SUPER_MAGIC) return new Xfs();
        if (magic == StatFs.BTRFS_SUPER_MAGIC) return new BtrfsAdapter();
        return new NoBlockMapping(mountFsType.isEmpty() ? String.format("fs type 0x%x", magic) : mountFsType);
    }

    static Optional<Refusal> refuse(FsReason reason, String detail) {
        return Optional.of(new Refusal(reason, detail));
    }

    /** The block device of a file system whose st_dev is its device (ext4, xfs). */
    static Location.Locator onStDev(OpenFile file, BlockLayer blocks) {
        Optional<BlockDevice> dev = blocks.device(file.stat().devMajor(), file.stat().devMinor());
        if (dev.isEmpty()) {
            Refusal r = new Refusal(FsReason.NO_BLOCK_DEVICE, "no block device " + file.stat().dev()
                    + " in /sys/dev/block for " + file.path());
            return (physical, length) -> new Location.Unplaceable(r, length);
        }
        return (physical, length) -> new Location.Placed(dev.get(), physical, length);
    }

    /** ext4 (and ext2/3): journaled data, encryption, inline data and verity refuse the whole file. */
    static final class Ext4 implements FsAdapter {
        @Override public String name() { return "ext4"; }

        @Override
        public Optional<Refusal> fileRefusal(OpenFile file) throws SysException {
            int flags = InodeFlags.flags(file.handle());
            if ((flags & InodeFlags.FS_ENCRYPT_FL) != 0) return refuse(FsReason.ENCRYPTED, "fscrypt policy on the inode");
            if ((flags & InodeFlags.FS_VERITY_FL) != 0) return refuse(FsReason.VERITY, "fs-verity enabled on the inode");
            if ((flags & InodeFlags.FS_INLINE_DATA_FL) != 0) return refuse(FsReason.INLINE, "the inode holds its data inline");
            if ((flags & InodeFlags.FS_JOURNAL_DATA_FL) != 0) return refuse(FsReason.JOURNALED_DATA, "chattr +j on the file");
            if (file.mountOptions().contains("data=journal")) return refuse(FsReason.JOURNALED_DATA, "mounted with data=journal");
            return Optional.empty();
        }

        @Override
        public Location.Locator locator(OpenFile file, BlockLayer blocks) {
            return onStDev(file, blocks);
        }
    }

    /** xfs: realtime files live on another device; shared (reflinked) extents are refused for WRITE by the generic part. */
    static final class Xfs implements FsAdapter {
        @Override public String name() { return "xfs"; }

        @Override
        public Optional<Refusal> fileRefusal(OpenFile file) throws SysException {
            if ((InodeFlags.xflags(file.handle()) & InodeFlags.FS_XFLAG_REALTIME) != 0) {
                return refuse(FsReason.REALTIME_DEVICE, "XFS_XFLAG_REALTIME is set on the file");
            }
            if ((InodeFlags.flags(file.handle()) & InodeFlags.FS_VERITY_FL) != 0) {
                return refuse(FsReason.VERITY, "fs-verity enabled on the inode");
            }
            return Optional.empty();
        }

        @Override
        public Location.Locator locator(OpenFile file, BlockLayer blocks) {
            return onStDev(file, blocks);
        }
    }

    /**
     * btrfs: FIEMAP reports btrfs logical addresses, which the chunk tree maps to device offsets;
     * compressed extents are ENCODED (refused by the generic converter); st_dev is anonymous, so
     * the device comes from the mount source. Direct reads skip btrfs's data checksums.
     */
    static final class BtrfsAdapter implements FsAdapter {
        @Override public String name() { return "btrfs"; }

        @Override
        public Optional<Refusal> fileRefusal(OpenFile file) throws SysException {
            long devices = Btrfs.deviceCount(file.handle());
            if (devices != 1) return refuse(FsReason.MULTI_DEVICE, "the file system spans " + devices + " devices");
            if ((InodeFlags.flags(file.handle()) & InodeFlags.FS_VERITY_FL) != 0) {
                return refuse(FsReason.VERITY, "fs-verity enabled on the inode");
            }
            return Optional.empty();
        }

        /**
         * btrfs checksums every data block (and compresses or copies on write): a block written
         * behind its back fails its checksum on the next read, so direct WRITE is refused for the
         * whole file. A nodatacow file (chattr +C) has no checksums, but a snapshot or reflink
         * still makes its extents shared, which FIEMAP does not always say; refused too.
         */
        @Override
        public Optional<Refusal> writeRefusal(OpenFile file) throws SysException {
            boolean nocow = (InodeFlags.flags(file.handle()) & InodeFlags.FS_NOCOW_FL) != 0;
            return refuse(FsReason.CHECKSUMMED, "btrfs" + (nocow
                    ? ": the file is nodatacow (chattr +C), but snapshots may still share its extents unseen"
                    : " checksums its data blocks (crc32c by default)"));
        }

        @Override
        public Location.Locator locator(OpenFile file, BlockLayer blocks) {
            List<Btrfs.Chunk> chunks;
            BlockDevice device;
            try {
                chunks = Btrfs.chunks(file.handle());
                Statx.Info src = Statx.of(Path.of(file.mountSource()));
                device = blocks.device(src.rdevMajor(), src.rdevMinor()).orElseThrow(
                        () -> new IOException("mount source " + file.mountSource() + " is no block device"));
            } catch (SysException e) {
                Refusal r = new Refusal(FsReason.CHUNK_MAP_UNREADABLE, e.call() + ": " + e.shortReason()
                        + (e.errno() == io.directmap.sys.Errno.EPERM ? "; needs CAP_SYS_ADMIN (run as root)" : ""));
                return (p, len) -> new Location.Unplaceable(r, len);
            } catch (IOException e) {
                Refusal r = new Refusal(FsReason.NO_BLOCK_DEVICE, e.getMessage());
                return (p, len) -> new Location.Unplaceable(r, len);
            }
            return (physical, length) -> {
                for (Btrfs.Chunk c : chunks) {
                    if (!c.contains(physical)) continue;
                    long n = Math.min(length, c.logical() + c.length() - physical);
                    if (!c.mirrored()) {
                        return new Location.Unplaceable(new Refusal(FsReason.STRIPED,
                                String.format("chunk at logical 0x%x has profile flags 0x%x", c.logical(), c.type())), n);
                    }
                    return new Location.Placed(device, c.stripes().getFirst().offset() + (physical - c.logical()), n);
                }
                return new Location.Unplaceable(new Refusal(FsReason.UNKNOWN_LOCATION,
                        String.format("logical 0x%x is in no chunk", physical)), length);
            };
        }
    }

    /** tmpfs, overlayfs, NFS, FUSE, ...: files have no blocks of their own on a device. */
    static final class NoBlockMapping implements FsAdapter {
        private final String fsName;

        NoBlockMapping(String fsName) { this.fsName = fsName; }

        @Override public String name() { return fsName; }

        @Override
        public Optional<Refusal> fileRefusal(OpenFile file) {
            return refuse(FsReason.NO_BLOCK_MAPPING, fsName + " at " + file.mountPoint()
                    + " is not mapped to blocks by DirectMap");
        }

        @Override
        public Location.Locator locator(OpenFile file, BlockLayer blocks) {
            Refusal r = fileRefusal(file).orElseThrow();
            return (p, len) -> new Location.Unplaceable(r, len);
        }
    }
}
