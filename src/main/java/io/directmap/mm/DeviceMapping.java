package io.directmap.mm;

import io.directmap.pci.Topology.Endpoint;
import java.util.List;

/**
 * What device_map handed out for one request: segments covering [start, end) of the vma in
 * order, each direct (a peer's bytes at a bus address) or a fallback with its refusal. It stays
 * live until device_unmap or until the exporter takes it back (an {@link Invalidation} through the
 * vma's {@link MappingOwner}); the exporter that made it tracks it until then, and only that
 * exporter's {@link VmOperations} may verify or unmap it.
 */
public interface DeviceMapping {
    /** {@return a number for messages and events, unique within the exporter that made it} */
    long id();

    /** {@return the call it answers} */
    MapRequest request();

    /** {@return the segments, in order, covering [start, end)} */
    List<Segment> segments();

    /** {@return false once it was unmapped or taken back: nothing read through it since may be delivered} */
    boolean isLive();

    /**
     * True when the exporter held writers back when it decided: until an invalidation arrives, no
     * one else can change the bytes. False when it could not (page-cache reads through the mapping
     * may interleave with another's writes).
     *
     * @return whether writers were held back for it
     */
    boolean coherent();

    /** {@return how long, in nanoseconds, the exporter (and what it asked below) took to decide} */
    long decisionNanos();

    /** {@return the device it was made for: the request's importer} */
    default Endpoint importer() { return request().importer(); }

    /** {@return the first file offset: the request's start} */
    default long start() { return request().start(); }

    /** {@return the file offset after the last byte: the request's end} */
    default long end() { return request().end(); }

    /** {@return the bytes of its direct segments} */
    default long directBytes() {
        long n = 0;
        for (Segment s : segments()) if (s instanceof Segment.Direct) n += s.length();
        return n;
    }

    /** {@return the bytes of its fallback segments, refused and read through the page cache} */
    default long fallbackBytes() {
        long n = 0;
        for (Segment s : segments()) if (s instanceof Segment.Fallback) n += s.length();
        return n;
    }
}
