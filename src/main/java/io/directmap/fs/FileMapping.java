package io.directmap.fs;

import io.directmap.mm.DeviceMapping;
import io.directmap.mm.MapRequest;
import io.directmap.mm.MappingOwner;
import io.directmap.mm.Segment;
import java.util.List;

/**
 * The file system's own {@link DeviceMapping}: what its device_map handed out for one request,
 * with what it needs to keep its promise (the open file, the placement it decided on, the block
 * devices' peer-mapping entries, the owner to tell). Live until {@link FsLayer#deviceUnmap}; the
 * file system tracks it until then, and refuses a mapping that is not one of these.
 */
public final class FileMapping implements DeviceMapping {
    private final long id;
    private final OpenFile file;
    private final MapRequest request;
    private final List<Segment> segments;
    private final long decisionNanos;
    private final MappingOwner owner;
    private final boolean coherent;
    private final List<Extent> placement;
    private volatile List<io.directmap.block.PeerMappings.Entry> peerEntries = List.of();
    private volatile boolean live = true;

    FileMapping(long id, OpenFile file, MapRequest request, List<Segment> segments, long decisionNanos,
                MappingOwner owner, boolean coherent, List<Extent> placement) {
        this.id = id;
        this.file = file;
        this.request = request;
        this.segments = List.copyOf(segments);
        this.decisionNanos = decisionNanos;
        this.owner = owner;
        this.coherent = coherent;
        this.placement = List.copyOf(placement);
    }

    /** Who to tell when the mapping is taken back. */
    MappingOwner owner() { return owner; }

    /**
     * True when the file system held writers back (a read lease) when it decided: until an
     * invalidation arrives, no other process can change the bytes. False when another process had
     * the file open for writing: page-cache reads through this mapping may interleave with its writes.
     */
    @Override public boolean coherent() { return coherent; }

    /** The file's extents over the mapping when it was decided: what the read_retry check compares. */
    List<Extent> placement() { return placement; }

    List<io.directmap.block.PeerMappings.Entry> peerEntries() { return peerEntries; }

    void peerEntries(List<io.directmap.block.PeerMappings.Entry> e) { peerEntries = e; }

    @Override public long id() { return id; }
    public OpenFile file() { return file; }
    @Override public MapRequest request() { return request; }
    @Override public List<Segment> segments() { return segments; }
    @Override public boolean isLive() { return live; }
    /** How long the file system and block device took to decide. */
    @Override public long decisionNanos() { return decisionNanos; }

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
