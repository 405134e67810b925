package io.directmap.mm;

import io.directmap.sys.FileHandle;
import io.directmap.sys.SysException;
import java.nio.file.Path;

/**
 * What a vma maps (the proposal's "mmap of a file", or of a device file whose driver exports
 * device memory): a name, the descriptor the pages are mapped from, and its size. The vma owns it
 * from mmap on and closes it at munmap. A filesystem supplies its open files ({@code fs.OpenFile});
 * an exporter supplies its own.
 */
public interface MappedFile extends AutoCloseable {
    /** The path it was opened by, for messages. */
    Path path();

    /** The descriptor mmap maps the pages from. */
    FileHandle handle();

    /** The size now, in bytes; mmap maps this much. */
    long size() throws SysException;

    /** Gives the descriptor back (at munmap). */
    @Override
    void close() throws SysException;
}
