package io.directmap.dmabuf;

import io.directmap.mm.Invalidation;

/**
 * A dynamic importer's move_notify callback (dma_buf_attach_ops.move_notify): the exporter is about
 * to move the buffer's blocks. The importer stops new DMA through the attachment, waits for the DMA
 * in flight, forgets the segments it was given, and only then returns: the blocks move after the
 * return. It maps the attachment again ({@link Attachment#map}) when it next needs the bytes.
 */
@FunctionalInterface
public interface MoveNotify {
    /**
     * Lets go of what the attachment mapped; returns when nothing reads through it.
     *
     * @param attachment the attachment whose segments are about to become wrong
     * @param why what the exporter is about to change, and why
     */
    void moveNotify(Attachment attachment, Invalidation why);
}
