package io.directmap.fs;

import io.directmap.pci.Topology.Endpoint;
import java.util.List;

/**
 * What device_map handed out for one request: segments covering [request.start, request.end)
 * in order. Live until {@link FsLayer#deviceUnmap}; the file system tracks it until then.
 */
public final class DeviceMapping {
    private final long id;
    private final OpenFile file;
    private final MapRequest request;
    private final List<Segment> segments;
    private final long decisionNanos;
    private volatile boolean live = true;

    DeviceMapping(long id, OpenFile file, MapRequest request, List<Segment> segments, long decisionNanos) {
        this.id = id;
        this.file = file;
        this.request = request;
        this.segments = List.copyOf(segments);
        this.decisionNanos = decisionNanos;
    }

    public long id() { return id; }
    public OpenFile file() { return file; }
    public MapRequest request() { return request; }
    public Endpoint importer() { return request.importer(); }
    public List<Segment> segments() { return segments; }
    public long start() { return request.start(); }
    public long end() { return request.end(); }
    public boolean isLive() { return live; }
    /** How long the file system and block device took to decide. */
    public long decisionNanos() { return decisionNanos; }

    public long directBytes() {
        return segments.stream().filter(s -> s instanceof Segment.Direct).mapToLong(Segment::length).sum();
    }

    public long fallbackBytes() {
        return segments.stream().filter(s -> s instanceof Segment.Fallback).mapToLong(Segment::length).sum();
    }

    boolean retire() {
        synchronized (this) {
            boolean was = live;
            live = false;
            return was;
        }
    }

    @Override
    public String toString() {
        return "mapping " + id + " of " + file.path() + " [" + start() + ", " + end() + ") for " + importer().name();
    }
}
