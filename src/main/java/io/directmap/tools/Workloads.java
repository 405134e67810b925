package io.directmap.tools;

import io.directmap.lang.Xorshift;
import io.directmap.sys.FileHandle;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Files with telling layouts, for the demo and the tests: data, cache state, holes, preallocation. */
public final class Workloads {
    private static final int CHUNK = 1 << 20;

    private Workloads() {}

    /** Writes length bytes of seeded, incompressible data at offset (the file grows as needed). */
    public static void write(Path file, long offset, long length, long seed) throws IOException {
        fill(file, offset, length, seed, false);
    }

    /** Writes length bytes of seeded text-like data that compresses well (btrfs compression). */
    public static void writeCompressible(Path file, long offset, long length, long seed) throws IOException {
        fill(file, offset, length, seed, true);
    }

    private static void fill(Path file, long offset, long length, long seed, boolean compressible) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
        MemorySegment chunk = MemorySegment.ofBuffer(buf);
        Xorshift data = Xorshift.seeded(seed);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            for (long done = 0; done < length; ) {
                int n = (int) Math.min(CHUNK, length - done);
                // Compressible: each byte one of 'a', 'c', 'e', 'g' (0x61 | 0..7): compresses well, still differs by seed.
                if (compressible) data.fill(chunk.asSlice(0, n), 0x0707070707070707L, 0x6161616161616161L);
                else data.fill(chunk.asSlice(0, n));
                buf.clear().limit(n);
                while (buf.hasRemaining()) done += ch.write(buf, offset + done);
            }
        }
    }

    /** fsync, then drop the file's clean pages from the page cache (posix_fadvise, no root needed). */
    public static void syncAndEvict(Path file) throws IOException {
        try (FileHandle h = FileHandle.openRead(file)) {
            h.fsync();
            io.directmap.sys.PageCacheAdvice.dropCache(h, 0, 0);
        }
    }

    /**
     * Brings exactly [offset, offset+length) into the page cache (posix_fadvise WILLNEED), without
     * the readahead a plain read would add around it.
     */
    public static void cache(Path file, long offset, long length) throws IOException {
        // One WILLNEED reads at most the device's readahead window; ask in small steps to cover it all.
        try (FileHandle h = FileHandle.openRead(file)) {
            for (long at = offset; at < offset + length; at += 512 * 1024) {
                io.directmap.sys.PageCacheAdvice.prefetch(h, at, Math.min(512 * 1024, offset + length - at));
            }
        }
    }

    /** fallocate(1): preallocates [offset, offset+length) as unwritten extents. */
    public static void preallocate(Path file, long offset, long length) throws IOException {
        Commands.run("fallocate", "-o", Long.toString(offset), "-l", Long.toString(length), file.toString());
    }

    /** The file's bytes in [offset, offset+length), read through the file system: the reference. */
    public static byte[] read(Path file, long offset, int length) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(length);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            while (buf.hasRemaining()) {
                if (ch.read(buf, offset + buf.position()) < 0) break;
            }
        }
        return buf.array();
    }
}
