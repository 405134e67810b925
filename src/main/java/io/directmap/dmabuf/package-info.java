/**
 * dma_buf: a device mapping whose lifetime is its own (the proposal's DEVICE_MAP_FLAG_PIN), after
 * Linux's drivers/dma-buf. An exporter (the file system) makes a {@link io.directmap.dmabuf.DmaBuf}
 * of what device_map granted and supplies its {@link io.directmap.dmabuf.DmaBufOps}; importers
 * {@link io.directmap.dmabuf.DmaBuf#attach attach} to it, pinned (the blocks stay where they are
 * for as long as the attachment lives) or {@link io.directmap.dmabuf.DmaBuf#attachDynamic dynamic}
 * (told to let go through {@link io.directmap.dmabuf.MoveNotify} before the exporter moves the
 * blocks, as dma_buf_move_notify tells an importer). The buffer is reference counted, as Netty's
 * ReferenceCounted is: {@link io.directmap.dmabuf.DmaBuf#retain}, {@link io.directmap.dmabuf.DmaBuf#release},
 * and the exporter lets go when the last reference goes; a buffer that becomes unreachable with
 * references left is reported as a leak and released.
 *
 * <p>The package knows nothing of file systems: like drivers/dma-buf, it is the meeting point of an
 * exporter and its importers, and speaks only the contract's vocabulary ({@code io.directmap.mm}).
 * It is exported: a driver writer's importer attaches to the buffers that device_map with PIN
 * gives, as it calls device_map itself.
 */
package io.directmap.dmabuf;
