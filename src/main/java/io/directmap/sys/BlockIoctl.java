package io.directmap.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** Block device geometry, <linux/fs.h>: BLKGETSIZE64, BLKSSZGET, BLKPBSZGET, BLKROGET. */
public final class BlockIoctl {
    private static final long BLKROGET = 0x125E, BLKSSZGET = 0x1268, BLKPBSZGET = 0x127B, BLKGETSIZE64 = 0x80081272L;

    public record Geometry(long sizeBytes, int logicalBlockSize, int physicalBlockSize, boolean readOnly) {}

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
}
