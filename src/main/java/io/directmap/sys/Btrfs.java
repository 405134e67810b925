package io.directmap.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * btrfs ioctls, <uapi/linux/btrfs.h> and <uapi/linux/btrfs_tree.h>. FIEMAP on btrfs reports
 * btrfs *logical* addresses; the chunk tree maps them to (device, physical offset) stripes.
 * BTRFS_IOC_TREE_SEARCH needs CAP_SYS_ADMIN.
 */
public final class Btrfs {
    private static final long BTRFS_IOC_TREE_SEARCH = 0xD0009411L, BTRFS_IOC_FS_INFO = 0x8400941FL;
    private static final long CHUNK_TREE_OBJECTID = 3, FIRST_CHUNK_TREE_OBJECTID = 256;
    private static final int CHUNK_ITEM_KEY = 228;
    private static final int SEARCH_KEY = 104, ARGS = 4096, ITEM_HEADER = 32;
    public static final long BLOCK_GROUP_DATA = 1, BLOCK_GROUP_RAID0 = 8, BLOCK_GROUP_RAID1 = 16,
            BLOCK_GROUP_DUP = 32, BLOCK_GROUP_RAID10 = 64, BLOCK_GROUP_RAID5 = 128, BLOCK_GROUP_RAID6 = 256,
            BLOCK_GROUP_RAID1C3 = 512, BLOCK_GROUP_RAID1C4 = 1024;

    /** One chunk: logical [logical, logical+length) is stored at stripes[i].offset on device stripes[i].devid. */
    public record Chunk(long logical, long length, long type, List<Stripe> stripes) {
        public boolean contains(long addr) { return addr >= logical && addr < logical + length; }
        /** Every stripe holds a full copy (single, DUP, RAID1*), so stripe 0 alone can be read. */
        public boolean mirrored() {
            return (type & (BLOCK_GROUP_RAID0 | BLOCK_GROUP_RAID10 | BLOCK_GROUP_RAID5 | BLOCK_GROUP_RAID6)) == 0;
        }
    }

    public record Stripe(long devid, long offset) {}

    private Btrfs() {}

    /** BTRFS_IOC_FS_INFO: the number of devices in the file system. */
    public static long deviceCount(FileHandle anyFile) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment args = arena.allocate(1024, 8);   // struct btrfs_ioctl_fs_info_args: max_id@0 num_devices@8
            Ioctl.call(anyFile, BTRFS_IOC_FS_INFO, args, "BTRFS_IOC_FS_INFO", "");
            return args.get(JAVA_LONG, 8);
        }
    }

    /** Every chunk of the file system, from the chunk tree. */
    public static List<Chunk> chunks(FileHandle anyFile) throws SysException {
        List<Chunk> out = new ArrayList<>();
        long minOffset = 0;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment args = arena.allocate(ARGS, 8);
            while (true) {
                args.fill((byte) 0);
                // struct btrfs_ioctl_search_key: tree_id@0 min_objectid@8 max_objectid@16 min_offset@24
                // max_offset@32 min_transid@40 max_transid@48 min_type@56 max_type@60 nr_items@64
                args.set(JAVA_LONG, 0, CHUNK_TREE_OBJECTID);
                args.set(JAVA_LONG, 8, FIRST_CHUNK_TREE_OBJECTID);
                args.set(JAVA_LONG, 16, FIRST_CHUNK_TREE_OBJECTID);
                args.set(JAVA_LONG, 24, minOffset);
                args.set(JAVA_LONG, 32, -1L);
                args.set(JAVA_LONG, 40, 0L);
                args.set(JAVA_LONG, 48, -1L);
                args.set(JAVA_INT, 56, CHUNK_ITEM_KEY);
                args.set(JAVA_INT, 60, CHUNK_ITEM_KEY);
                args.set(JAVA_INT, 64, 4096);
                Ioctl.call(anyFile, BTRFS_IOC_TREE_SEARCH, args, "BTRFS_IOC_TREE_SEARCH (chunk tree)",
                        "reading the btrfs chunk tree needs CAP_SYS_ADMIN");
                int items = args.get(JAVA_INT, 64);
                if (items == 0) break;
                long pos = SEARCH_KEY;
                long lastOffset = minOffset;
                for (int i = 0; i < items; i++) {
                    // struct btrfs_ioctl_search_header: transid@0 objectid@8 offset@16 type@24 len@28
                    long keyOffset = args.get(JAVA_LONG, pos + 16);
                    int type = args.get(JAVA_INT, pos + 24);
                    int len = args.get(JAVA_INT, pos + 28);
                    long item = pos + ITEM_HEADER;
                    if (type == CHUNK_ITEM_KEY) {
                        // struct btrfs_chunk: length@0 owner@8 stripe_len@16 type@24 ... num_stripes@44 (u16)
                        // stripes@48, each struct btrfs_stripe { devid@0, offset@8, dev_uuid[16] } = 32 bytes
                        long length = args.get(JAVA_LONG, item);
                        long chunkType = args.get(JAVA_LONG, item + 24);
                        int n = Short.toUnsignedInt(args.get(JAVA_SHORT, item + 44));
                        List<Stripe> stripes = new ArrayList<>(n);
                        for (int s = 0; s < n; s++) {
                            long so = item + 48 + 32L * s;
                            stripes.add(new Stripe(args.get(JAVA_LONG, so), args.get(JAVA_LONG, so + 8)));
                        }
                        out.add(new Chunk(keyOffset, length, chunkType, List.copyOf(stripes)));
                    }
                    lastOffset = keyOffset;
                    pos = item + len;
                }
                if (lastOffset == -1L) break;
                minOffset = lastOffset + 1;
            }
        }
        return out;
    }
}
