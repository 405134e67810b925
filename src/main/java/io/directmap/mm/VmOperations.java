package io.directmap.mm;

import io.directmap.pci.Topology.Endpoint;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * vm_operations_struct with the proposal's two callbacks. A file's vma gets them from its file
 * system; a device file's vma gets them from the exporting driver.
 */
public interface VmOperations {
    /**
     * The page-cache bytes of [offset, offset+length) of the vma, faulted in as a CPU access would
     * (step 4b: what a refused range is read through).
     *
     * @param vma the mapping
     * @param offset the file offset the bytes start at
     * @param length how many bytes
     * @return the bytes, a slice of the vma's pages
     * @throws IOException when the pages cannot be faulted in (the file shrank, the device failed)
     */
    MemorySegment fault(Vma vma, long offset, long length) throws IOException;

    /**
     * device_map: may request.importer access [request.start, request.end) of the vma directly?
     * Returns a typed answer for every part of the range (direct, or fallback with who refused and
     * why). Refusal is a normal outcome; exceptions are for bad input and broken systems. The
     * operations register the mapping with the vma ({@link Vma#onUnmap}) so that munmap releases
     * it, and take it back when they must through {@link Vma#owner()}.
     *
     * @param vma the mapping the importer mirrors
     * @param request the importer, the range and how it wants it
     * @return the answer, one segment for each part of the range
     * @throws IOException for bad input (an {@link InvalidRequestException} says what to change) or
     *         a broken system; never for a refusal
     */
    DeviceMapping deviceMap(Vma vma, MapRequest request) throws IOException;

    /**
     * The read_retry check for changes nothing held back: is [start, end) of mapping still what
     * was decided (same blocks; after a failed read, the block device unchanged)? If not, the
     * mapping is taken back (its notifiers run) and this returns false; the importer faults and
     * reads again.
     *
     * @param vma the mapping
     * @param mapping what deviceMap handed out
     * @param start the first file offset the importer read
     * @param end the file offset after the last one it read
     * @param readFailed whether the direct read failed (then the block device is checked too)
     * @return true when the read stands; false when the mapping was taken back
     * @throws IOException when the check itself could not be made
     */
    boolean verify(Vma vma, DeviceMapping mapping, long start, long end, boolean readFailed) throws IOException;

    /**
     * The importer moved bytes one way (direct, or through the page cache as a refusal's
     * {@link Reason#transfer()} said) in nanos: what a learning policy measures. Ignored by default.
     *
     * @param vma the mapping read from
     * @param way direct, or through the page cache (hot or cold)
     * @param bytes how many bytes moved
     * @param nanos how long they took
     */
    default void observe(Vma vma, Transfer way, long bytes, long nanos) { }

    /**
     * The write fault path (step 4b for WRITE): src goes into [offset, offset + src.byteSize()) of
     * the file through its owner's own write path (a file system: pwrite through the page cache), as
     * a CPU store through the mapping would. A write may reach past the end of the file and extend
     * it. Exporters that cannot be written refuse (the default).
     *
     * @param vma the mapping
     * @param offset the file offset the bytes go to
     * @param src the bytes, in the importer's memory
     * @throws IOException when the write failed (the message names the file, the range and the errno)
     */
    default void store(Vma vma, long offset, MemorySegment src) throws IOException {
        throw new IOException(vma.file().path() + " cannot be written through " + getClass().getSimpleName());
    }

    /**
     * Before a long write pins its next stretch: a break of what holds other processes back (a
     * lease another process's open is breaking) is let through first, so that process waits for
     * the stretch pinned when it came, never for the whole write. Waits at most a bounded time.
     * The default does nothing.
     *
     * @param vma the mapping being written through
     */
    default void awaitBreaks(Vma vma) { }

    /**
     * The importer has written [start, end) through mapping (its direct segments to their peers, the
     * rest through {@link #store}); src holds what it wrote there. The exporter makes the result
     * what every reader sees before the mapping can be taken back: for a file, no page-cache page
     * keeps the old bytes, mtime and ctime move, and, when durable, the bytes are on stable storage
     * (the block devices flushed, as fdatasync). Called with the range still pinned, whether the
     * writes succeeded or not. The default does nothing.
     *
     * @param vma the mapping
     * @param mapping what deviceMap handed out (with WRITE)
     * @param start the first file offset written
     * @param end the file offset after the last one
     * @param src what the importer wrote, src[0] being the byte at start
     * @param durable whether the caller asked for the bytes to be durable
     * @throws IOException when the page cache could not be brought in line or a flush failed
     */
    default void written(Vma vma, DeviceMapping mapping, long start, long end, MemorySegment src, boolean durable)
            throws IOException { }

    /**
     * device_unmap: releases exactly what deviceMap handed out. Idempotent.
     *
     * @param vma the mapping
     * @param importer the device the mapping was made for
     * @param mapping what deviceMap handed out
     */
    void deviceUnmap(Vma vma, Endpoint importer, DeviceMapping mapping);
}
