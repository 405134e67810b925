package io.directmap.tools.serve;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A file whose every 4 KiB block says which version of the file wrote it: an 8-byte magic, the
 * version, the block's index, then 4072 bytes computed from (version, index). A body read from a
 * server is checked block by block: each block must be exactly the bytes some version wrote at that
 * index (else it is torn), and every block of one response must be of one version (else it is
 * mixed). A version is written by opening the file anew, overwriting it in place and closing it, as
 * a program that rewrites a file does; the open is what breaks a lease (fcntl(2) F_SETLEASE), so a
 * server that learns of changes from lease breaks is given its chance.
 */
public final class StampedBlocks {
    /** The unit a version is checked in: a page, the unit the page cache and O_DIRECT move. */
    public static final int BLOCK = 4096;
    static final long MAGIC = 0x444d_4150_5645_5231L; // "DMAPVER1"
    private static final int HEADER = 24;
    private static final int CHUNK = 256 * BLOCK;

    private StampedBlocks() {}

    /** Fills block[0, BLOCK) with what version writes at block index {@code index}. */
    static void fill(ByteBuffer block, long version, long index) {
        ByteBuffer b = block.duplicate().order(ByteOrder.BIG_ENDIAN);
        int base = b.position();
        b.putLong(base, MAGIC).putLong(base + 8, version).putLong(base + 16, index);
        for (int i = HEADER; i < BLOCK; i += 8) b.putLong(base + i, word(version, index, i));
    }

    /** splitmix64 of (version, index, offset): different in every word of every block of every version. */
    private static long word(long version, long index, int offset) {
        long z = version * 0x9e37_79b9_7f4a_7c15L + index * 0xbf58_476d_1ce4_e5b9L + offset * 0x94d0_49bb_1331_11ebL;
        z = (z ^ (z >>> 30)) * 0xbf58_476d_1ce4_e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d0_49bb_1331_11ebL;
        return z ^ (z >>> 31);
    }

    /**
     * Overwrites the first {@code size} bytes of {@code file} (created if missing, never truncated)
     * with {@code version}, through a descriptor opened for this version alone.
     */
    public static void writeVersion(Path file, long version, long size) throws IOException {
        if (size % BLOCK != 0) throw new IllegalArgumentException("size " + size + " is not a multiple of " + BLOCK);
        ByteBuffer chunk = ByteBuffer.allocate(CHUNK);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            for (long off = 0; off < size; ) {
                int n = (int) Math.min(CHUNK, size - off);
                for (int i = 0; i < n; i += BLOCK) fill(chunk.position(i), version, (off + i) / BLOCK);
                chunk.position(0).limit(n);
                while (chunk.hasRemaining()) off += ch.write(chunk, off);
                chunk.clear();
            }
        }
    }

    /**
     * Checks a body that a server sent for the whole file: {@code body[0, length)} against the
     * blocks at indexes 0, 1, ...; a last partial block is checked as far as it goes (one shorter
     * than its header says nothing and is passed over).
     */
    public static BodyVerdict check(byte[] body, int length, boolean complete) {
        ByteBuffer in = ByteBuffer.wrap(body, 0, length).order(ByteOrder.BIG_ENDIAN);
        ByteBuffer expected = ByteBuffer.allocate(BLOCK);
        long version = -1;
        for (int off = 0, index = 0; off < length; off += BLOCK, index++) {
            int n = Math.min(BLOCK, length - off);
            if (n < HEADER) break;
            long v = in.getLong(off + 8);
            if (in.getLong(off) != MAGIC || in.getLong(off + 16) != index) return new BodyVerdict.Torn(index, length, complete);
            fill(expected.clear(), v, index);
            if (!in.slice(off, n).equals(expected.slice(0, n))) return new BodyVerdict.Torn(index, length, complete);
            if (version == -1) version = v;
            else if (v != version) return new BodyVerdict.Mixed(version, v, index, length, complete);
        }
        return new BodyVerdict.Clean(version, length, complete);
    }
}
