package io.directmap;

import java.nio.file.Path;
import java.util.List;

/**
 * What one {@link FileMapping#write} did: the bytes the device wrote straight to the block device,
 * those the file system wrote for it, and which way each range went ({@link Part.Direct}: written
 * with O_DIRECT to the block device; {@link Part.Fallback}: written through the page cache, with
 * who refused the direct path and why). When it returns, the file reads back as written.
 *
 * @param file          the file written
 * @param offset        the first byte written (a file offset)
 * @param length        how many bytes were written
 * @param directBytes   the bytes written straight to the block device
 * @param fallbackBytes the bytes the file system wrote (through the page cache)
 * @param parts         which way each range went, in order, covering [offset, offset + length)
 */
public record Written(Path file, long offset, long length, long directBytes, long fallbackBytes, List<Part> parts) {
    /** Copies parts. */
    public Written {
        parts = List.copyOf(parts);
    }
}
