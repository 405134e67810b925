package io.directmap.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * FS_IOC_FIEMAP, <linux/fiemap.h> and Documentation/filesystems/fiemap.rst: the file's extent map.
 * Without {@link #FIEMAP_FLAG_SYNC} ext4 reports dirty, unallocated ranges as DELALLOC with
 * physical 0; we call without it on purpose, so that a dirty range is seen as such and refused
 * rather than silently written back by a read-only request.
 */
public final class Fiemap {
    public static final int FIEMAP_EXTENT_LAST = 0x1, FIEMAP_EXTENT_UNKNOWN = 0x2, FIEMAP_EXTENT_DELALLOC = 0x4,
            FIEMAP_EXTENT_ENCODED = 0x8, FIEMAP_EXTENT_DATA_ENCRYPTED = 0x80, FIEMAP_EXTENT_NOT_ALIGNED = 0x100,
            FIEMAP_EXTENT_DATA_INLINE = 0x200, FIEMAP_EXTENT_DATA_TAIL = 0x400, FIEMAP_EXTENT_UNWRITTEN = 0x800,
            FIEMAP_EXTENT_MERGED = 0x1000, FIEMAP_EXTENT_SHARED = 0x2000;
    public static final int FIEMAP_FLAG_SYNC = 0x1;

    private static final long FS_IOC_FIEMAP = 0xC020660BL;
    private static final int HEADER = 32, EXTENT = 56, BATCH = 512;

    /** One struct fiemap_extent: file offset, physical (fs device) offset, length, FIEMAP_EXTENT_* flags. */
    public record Extent(long logical, long physical, long length, int flags) {
        public long logicalEnd() { return logical + length; }
        public boolean has(int flag) { return (flags & flag) != 0; }
    }

    private Fiemap() {}

    /** The extents that overlap [start, start+length), in file order. */
    public static List<Extent> extents(FileHandle file, long start, long length, int flags) throws SysException {
        List<Extent> out = new ArrayList<>();
        long end = start + length;
        long next = start;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(HEADER + (long) EXTENT * BATCH, 8);
            while (next < end) {
                buf.fill((byte) 0);
                // struct fiemap: fm_start@0 fm_length@8 fm_flags@16 fm_mapped_extents@20 fm_extent_count@24
                buf.set(JAVA_LONG, 0, next);
                buf.set(JAVA_LONG, 8, end - next);
                buf.set(JAVA_INT, 16, flags);
                buf.set(JAVA_INT, 24, BATCH);
                Ioctl.call(file, FS_IOC_FIEMAP, buf, "FS_IOC_FIEMAP " + next + "+" + (end - next),
                        "this file system does not report block mappings");
                int mapped = buf.get(JAVA_INT, 20);
                if (mapped == 0) break;
                boolean last = false;
                for (int i = 0; i < mapped; i++) {
                    long o = HEADER + (long) EXTENT * i;
                    // struct fiemap_extent: fe_logical@0 fe_physical@8 fe_length@16 fe_flags@40
                    Extent e = new Extent(buf.get(JAVA_LONG, o), buf.get(JAVA_LONG, o + 8),
                            buf.get(JAVA_LONG, o + 16), buf.get(JAVA_INT, o + 40));
                    out.add(e);
                    last |= e.has(FIEMAP_EXTENT_LAST);
                    next = Math.max(next, e.logicalEnd());
                }
                if (last || mapped < BATCH) break;
            }
        }
        return out;
    }
}
