package io.directmap;

/**
 * One range of a {@link Read}, in file offsets [start, end): how its bytes reached device memory,
 * as the read saw it (taken from the mapping each byte was actually read through, so a mapping
 * taken back or faulted anew after the read does not change it). Handle it with a switch:
 *
 * <pre>{@code
 * for (Part p : read.parts()) {
 *     switch (p) {
 *         case Part.Direct d -> System.out.println(d.start() + " direct from " + d.blockDevice());
 *         case Part.Fallback f -> System.out.println(f.start() + " page cache: " + f.refusedBy() + ": " + f.summary());
 *     }
 * }
 * }</pre>
 */
public sealed interface Part {
    /** {@return the first byte of the range (a file offset)} */
    long start();

    /** {@return one past the last byte of the range (a file offset)} */
    long end();

    /** {@return end() - start()} */
    default long length() { return end() - start(); }

    /** {@return true when the device read these bytes straight from the block device} */
    default boolean direct() { return this instanceof Direct; }

    /**
     * Read straight from the block device (O_DIRECT, the page cache untouched).
     *
     * @param start        the first byte (a file offset)
     * @param end          one past the last byte (a file offset)
     * @param blockDevice  the device node the bytes were read from, such as {@code /dev/loop3}
     * @param deviceOffset where start() lies on that device, in bytes
     * @param busAddress   the bus address the device's DMA used for start()
     * @param route        how the file's blocks were followed to that device (loop devices, btrfs chunks)
     */
    record Direct(long start, long end, String blockDevice, long deviceOffset, long busAddress, String route) implements Part {
        @Override
        public String toString() {
            return "[" + start + ", " + end + ") direct, " + blockDevice + " @ " + deviceOffset + " via " + route;
        }
    }

    /**
     * Read through the page cache, because a layer refused the direct path.
     *
     * @param start     the first byte (a file offset)
     * @param end       one past the last byte (a file offset)
     * @param refusedBy who said no
     * @param reason    a stable code for programs, such as {@code page_cached} or {@code no_p2p_path}
     * @param summary   one line for people, such as "pages are in the page cache"
     * @param detail    what makes it actionable, such as "1024 cached pages in [0 B, 4 MiB)"; may be empty
     */
    record Fallback(long start, long end, RefusedBy refusedBy, String reason, String summary, String detail) implements Part {
        @Override
        public String toString() {
            return "[" + start + ", " + end + ") fallback, " + refusedBy.label() + ": " + summary
                    + (detail.isEmpty() ? "" : "; " + detail);
        }
    }
}
