package io.directmap.mm;

import io.directmap.pci.Topology.Endpoint;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * vm_operations_struct with the proposal's two callbacks. A file's vma gets them from its file
 * system; a device file's vma gets them from the exporting driver.
 */
public interface VmOperations {
    /** The page-cache bytes of [offset, offset+length) of the vma, faulted in as a CPU access would. */
    MemorySegment fault(Vma vma, long offset, long length) throws IOException;

    /**
     * device_map: may request.importer access [request.start, request.end) of the vma directly?
     * Returns a typed answer for every part of the range (direct, or fallback with who refused and
     * why). Refusal is a normal outcome; exceptions are for bad input and broken systems. The
     * operations register the mapping with the vma ({@link Vma#onUnmap}) so that munmap releases
     * it, and take it back when they must through {@link Vma#owner()}.
     */
    DeviceMapping deviceMap(Vma vma, MapRequest request) throws IOException;

    /**
     * The read_retry check for changes nothing held back: is [start, end) of mapping still what
     * was decided (same blocks; after a failed read, the block device unchanged)? If not, the
     * mapping is taken back (its notifiers run) and this returns false; the importer faults and
     * reads again.
     */
    boolean verify(Vma vma, DeviceMapping mapping, long start, long end, boolean readFailed) throws IOException;

    /**
     * The importer moved bytes one way (direct, or through the page cache as a refusal's
     * {@link Reason#transfer()} said) in nanos: what a learning policy measures. Ignored by default.
     */
    default void observe(Vma vma, Transfer way, long bytes, long nanos) { }

    /** device_unmap: releases exactly what deviceMap handed out. Idempotent. */
    void deviceUnmap(Vma vma, Endpoint importer, DeviceMapping mapping);
}
