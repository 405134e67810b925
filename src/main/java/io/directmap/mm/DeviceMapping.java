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
    /** A number for messages and events, unique within the exporter that made it. */
    long id();

    /** The call it answers. */
    MapRequest request();

    /** The segments, in order, covering [start, end). */
    List<Segment> segments();

    /** False once it was unmapped or taken back: nothing read through it since may be delivered. */
    boolean isLive();

    /**
     * True when the exporter held writers back when it decided: until an invalidation arrives, no
     * one else can change the bytes. False when it could not (page-cache reads through the mapping
     * may interleave with another's writes).
     */
    boolean coherent();

    /** How long the exporter (and what it asked below) took to decide. */
    long decisionNanos();

    default Endpoint importer() { return request().importer(); }
    default long start() { return request().start(); }
    default long end() { return request().end(); }

    default long directBytes() {
        long n = 0;
        for (Segment s : segments()) if (s instanceof Segment.Direct) n += s.length();
        return n;
    }

    default long fallbackBytes() {
        long n = 0;
        for (Segment s : segments()) if (s instanceof Segment.Fallback) n += s.length();
        return n;
    }
}
