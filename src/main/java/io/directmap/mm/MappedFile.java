package io.directmap.mm;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * What a vma maps (the proposal's "mmap of a file", or of a device file whose driver exports
 * device memory): a name, its size, and the pages it maps itself into, as a driver's
 * {@code f_op->mmap} does. The vma owns it from mmap on and closes it at munmap. A filesystem
 * supplies its open files ({@code fs.OpenFile}); an exporter supplies its own.
 */
public interface MappedFile extends AutoCloseable {
    /**
     * The path it was opened by, for messages.
     *
     * @return the path as the caller gave it
     */
    Path path();

    /**
     * The size now; {@link #mapShared(Arena)} maps this much.
     *
     * @return the size in bytes
     * @throws IOException when it cannot be read (the file or device failed, or was closed)
     */
    long size() throws IOException;

    /**
     * mmap(PROT_READ, MAP_SHARED) of the whole of it, as its driver's {@code f_op->mmap}: the pages
     * a process reads through the page cache, unmapped when arena closes.
     *
     * @param arena the lifetime of the mapping: closing it unmaps the pages
     * @return the mapped pages, {@link #size()} bytes long
     * @throws IOException when the system refuses the mapping (the message names the file and the call)
     */
    MemorySegment mapShared(Arena arena) throws IOException;

    /**
     * Gives its descriptor back (at munmap).
     *
     * @throws IOException when closing failed (the descriptor is given back all the same)
     */
    @Override
    void close() throws IOException;
}
