package io.directmap.dmabuf;

import io.directmap.mm.Segment;
import io.directmap.pci.Topology.Endpoint;
import java.io.IOException;
import java.util.List;

/**
 * One importer attached to a {@link DmaBuf} (struct dma_buf_attachment): pinned, holding the blocks
 * in place, or dynamic, told before they move. It holds a reference to the buffer until closed.
 */
public final class Attachment implements AutoCloseable {
    private final DmaBuf buf;
    private final Endpoint importer;
    private final MoveNotify notify;
    private volatile boolean closed;
    /** A dynamic attachment mapped the buffer and has not let go since: what move_notify is for. */
    private volatile boolean holdsMapping;

    Attachment(DmaBuf buf, Endpoint importer, MoveNotify notify) {
        this.buf = buf;
        this.importer = importer;
        this.notify = notify;
    }

    /** {@return the buffer it is attached to} */
    public DmaBuf buffer() { return buf; }

    /** {@return the device that reads through it} */
    public Endpoint importer() { return importer; }

    /** {@return true for a dynamic attachment (told before the blocks move), false for a pinned one} */
    public boolean dynamic() { return notify != null; }

    MoveNotify notifier() { return notify; }

    boolean holdsMapping() { return holdsMapping; }

    void holdsMapping(boolean h) { holdsMapping = h; }

    /**
     * dma_buf_map_attachment: the segments that hold the buffer's bytes now. The same list until
     * the blocks move; after a move (a dynamic importer was told), the exporter is asked again. A
     * dynamic attachment is told of a move only while it holds what it mapped: once told, not
     * again until it maps anew.
     *
     * @return the segments, in order, covering the buffer's range
     * @throws IOException when the exporter cannot say where the bytes are, or the buffer was revoked
     * @throws IllegalStateException when this attachment is closed or the buffer released
     */
    public List<Segment> map() throws IOException {
        if (closed) throw new IllegalStateException(this + " is closed; attach again");
        List<Segment> s = buf.map(this);
        holdsMapping = true;
        return s;
    }

    /** Detaches: drops its reference (the last one releases the buffer). Idempotent. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        buf.detach(this);
    }

    @Override
    public String toString() {
        return (dynamic() ? "dynamic" : "pinned") + " attachment of " + importer.name() + " to dma_buf " + buf.id();
    }
}
