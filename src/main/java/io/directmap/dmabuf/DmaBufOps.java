package io.directmap.dmabuf;

import io.directmap.mm.Refusal;
import io.directmap.mm.Segment;
import java.io.IOException;
import java.util.List;
import java.util.Optional;

/**
 * What the exporter of a {@link DmaBuf} supplies (struct dma_buf_ops): where the buffer's bytes are
 * now, and what to do when the last reference goes. Both are called without the buffer's lock held.
 */
public interface DmaBufOps {
    /**
     * map_dma_buf: the segments that hold the buffer's bytes now, in order, covering the buffer's
     * range. Called for the first map of an attachment and for every map after a move (the exporter
     * decides again where the bytes are; it may then refuse parts, as device_map does).
     *
     * @return the segments, direct or refused
     * @throws IOException when where the bytes are cannot be found out (the message names the file
     *         and the range)
     */
    List<Segment> map() throws IOException;

    /**
     * release: the last reference went; the exporter lets go of everything the buffer held (its
     * device mapping, its hold on the blocks). Called once.
     */
    void release();

    /**
     * Asked when a buffer that only dynamic importers held is about to be pinned again (a pinned
     * attachment or a retain), after the new reference was taken (so no further change is let
     * through) and without the buffer's lock: whether a pin now would hold bytes that can still
     * change, e.g. a change let through for the dynamic importers that is still running, or a
     * shared writable mapping that stores into the file without asking. May wait a bounded time
     * for such a change to end.
     *
     * @return why the buffer cannot be pinned now, or empty to let it be pinned
     */
    default Optional<Refusal> pinRefusal() {
        return Optional.empty();
    }
}
