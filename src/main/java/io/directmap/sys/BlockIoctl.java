package io.directmap.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

/**
 * What a block device descriptor says of itself: geometry (<linux/fs.h>: BLKGETSIZE64, BLKSSZGET,
 * BLKPBSZGET, BLKROGET), its disk sequence number (BLKGETDISKSEQ, Linux 5.15), and for a loop
 * device what it reads (LOOP_GET_STATUS64, <linux/loop.h>). These answer for the device the
 * descriptor holds, whatever its name means now.
 */
public final class BlockIoctl {
    private static final long BLKROGET = 0x125E, BLKSSZGET = 0x1268, BLKPBSZGET = 0x127B, BLKGETSIZE64 = 0x80081272L;
    /** _IOR(0x12, 128, __u64). */
    private static final long BLKGETDISKSEQ = 0x80081280L;
    /** 0x4C05, <linux/loop.h>. */
    private static final long LOOP_GET_STATUS64 = 0x4C05;
    private static final int ENXIO = 6;
    private static final int LO_FLAGS_AUTOCLEAR = 4, LO_NAME_SIZE = 64;
    // struct loop_info64: lo_device@0 lo_inode@8 lo_rdevice@16 lo_offset@24 lo_sizelimit@32 (__u64)
    // lo_number@40 lo_encrypt_type@44 lo_encrypt_key_size@48 lo_flags@52 (__u32) lo_file_name[64]@56
    // lo_crypt_name[64]@120 lo_encrypt_key[32]@184 lo_init[2]@216 (__u64); 232 bytes
    private static final int LOOP_INFO64_SIZE = 232;

    public record Geometry(long sizeBytes, int logicalBlockSize, int physicalBlockSize, boolean readOnly) {}

    /**
     * A loop device's backing file as the kernel holds it: the st_dev and st_ino of the open file
     * (lo_device, lo_inode), the offset and size limit (0 = to the end of the file) of the window,
     * and lo_file_name, the name given at attach, cut at 63 bytes.
     */
    public record LoopStatus(int backingDevMajor, int backingDevMinor, long backingInode, long offset, long sizeLimit,
                             int number, boolean autoclear, String fileName) {
        public String backingDev() { return backingDevMajor + ":" + backingDevMinor; }

        /** The same backing inode and window: what the loop device's bytes are. */
        public boolean sameBacking(LoopStatus o) {
            return backingDevMajor == o.backingDevMajor && backingDevMinor == o.backingDevMinor
                    && backingInode == o.backingInode && offset == o.offset && sizeLimit == o.sizeLimit;
        }

        /** "inode 12 on 254:0 from offset 0". */
        public String describe() {
            return "inode " + backingInode + " on " + backingDev() + " from offset " + offset
                    + (sizeLimit == 0 ? "" : " (size limit " + sizeLimit + ")");
        }
    }

    private BlockIoctl() {}

    public static Geometry geometry(FileHandle device) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(8, 8);
            Ioctl.call(device, BLKGETSIZE64, buf, "BLKGETSIZE64", "not a block device");
            long size = buf.get(JAVA_LONG, 0);
            Ioctl.call(device, BLKSSZGET, buf, "BLKSSZGET", "");
            int logical = buf.get(JAVA_INT, 0);
            Ioctl.call(device, BLKPBSZGET, buf, "BLKPBSZGET", "");
            int physical = buf.get(JAVA_INT, 0);
            Ioctl.call(device, BLKROGET, buf, "BLKROGET", "");
            boolean ro = buf.get(JAVA_INT, 0) != 0;
            return new Geometry(size, logical, physical, ro);
        }
    }

    /**
     * The disk sequence number of the device the descriptor holds: it grows each time a disk is
     * made or a loop device attached, so it tells a reused major:minor apart. Empty where the
     * kernel predates it (ENOTTY).
     */
    public static Optional<Long> diskSeq(FileHandle device) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(8, 8);
            try {
                Ioctl.call(device, BLKGETDISKSEQ, buf, "BLKGETDISKSEQ", "");
            } catch (SysException e) {
                if (e.errno() == Errno.ENOTTY || e.errno() == Errno.EINVAL) return Optional.empty();
                throw e;
            }
            return Optional.of(buf.get(JAVA_LONG, 0));
        }
    }

    /** What the loop device reads now; empty when it is attached to nothing (ENXIO). */
    public static Optional<LoopStatus> loopStatus(FileHandle loop) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment info = arena.allocate(LOOP_INFO64_SIZE, 8);
            try {
                Ioctl.call(loop, LOOP_GET_STATUS64, info, "LOOP_GET_STATUS64", "not a loop device");
            } catch (SysException e) {
                if (e.errno() == ENXIO) return Optional.empty();
                throw e;
            }
            long dev = info.get(JAVA_LONG, 0);
            byte[] name = info.asSlice(56, LO_NAME_SIZE).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            int len = 0;
            while (len < name.length && name[len] != 0) len++;
            return Optional.of(new LoopStatus(devMajor(dev), devMinor(dev), info.get(JAVA_LONG, 8),
                    info.get(JAVA_LONG, 24), info.get(JAVA_LONG, 32), info.get(JAVA_INT, 40),
                    (info.get(JAVA_INT, 52) & LO_FLAGS_AUTOCLEAR) != 0, new String(name, 0, len, StandardCharsets.UTF_8)));
        }
    }

    // lo_device is huge_encode_dev(st_dev), the same encoding as glibc's makedev (gnu_dev_major/minor).
    static int devMajor(long dev) {
        return (int) (((dev & 0x00000000000fff00L) >>> 8) | ((dev & 0xfffff00000000000L) >>> 32));
    }

    static int devMinor(long dev) {
        return (int) ((dev & 0xffL) | ((dev & 0x00000ffffff00000L) >>> 12));
    }
}
