package io.directmap;

import io.directmap.dmabuf.Attachment;
import io.directmap.dmabuf.DmaBuf;
import io.directmap.mm.Segment;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;

/**
 * What {@link Device#pin} gave: the range pinned for the device, or refused with who refused and
 * why. Handle it with a switch:
 *
 * <pre>{@code
 * switch (gpu.pin(Path.of("data.bin"), 0, 64 << 20)) {
 *     case Pin.Pinned p -> { try (p) { p.readInto(buffer); ... } }   // writers get ETXTBSY meanwhile
 *     case Pin.Refused r -> System.out.println("not pinned: " + r.why());
 * }
 * }</pre>
 */
public sealed interface Pin {
    /** {@return the file} */
    Path file();

    /**
     * The range is pinned: the device is attached (pinned) to the dma_buf that holds it, and its
     * blocks stay where they are until this is closed: every other open of the file for writing,
     * and every change of the range, fails with ETXTBSY meanwhile. The file may be closed, renamed
     * or unlinked; the pin holds the inode.
     */
    final class Pinned implements Pin, AutoCloseable {
        private final Device device;
        private final Path file;
        private final Attachment attachment;
        private final List<Part> parts;

        Pinned(Device device, Path file, Attachment attachment, List<Part> parts) {
            this.device = device;
            this.file = file;
            this.attachment = attachment;
            this.parts = parts;
        }

        @Override public Path file() { return file; }

        /** {@return the first byte pinned (a file offset, page-aligned)} */
        public long start() { return attachment.buffer().start(); }

        /** {@return the file offset after the last byte pinned (a whole page)} */
        public long end() { return attachment.buffer().end(); }

        /** {@return the dma_buf: other importers may attach to it (see {@link DmaBuf#attach})} */
        public DmaBuf buffer() { return attachment.buffer(); }

        /** {@return where the pinned bytes lie: every part {@link Part.Direct}} */
        public List<Part> parts() { return parts; }

        /**
         * Reads the pinned range into the start of into, straight from the block device.
         *
         * @param into device memory of the pinning device, at least {@code end() - start()} bytes
         * @throws IOException when into is too small or of another device, or a read fails (the
         *         message names the file, the range and the block device)
         * @throws IllegalStateException when the pin or into is closed
         */
        public void readInto(DeviceBuffer into) throws IOException {
            if (into.device() != device) throw Internals.invalid(file + ": " + into + " is memory of " + into.device().name()
                    + ", not of " + device.name() + "; allocate it with " + device.name() + ".allocate");
            if (into.size() < end() - start()) throw Internals.invalid(file + ": " + into + " holds " + into.size()
                    + " bytes; the pin is " + (end() - start()) + " bytes: allocate at least that");
            List<Segment> segments = attachment.map();
            MemorySegment dst = into.beginWrite();
            try {
                device.software().readDirect(segments, start(), dst);
            } catch (IOException e) {
                throw Internals.fromBelow(file + " [" + start() + ", " + end() + ") through its pin", e);
            } finally {
                into.endWrite();
            }
        }

        /** Detaches the device; the pin ends with the buffer's last reference (other importers may hold it). Idempotent. */
        @Override
        public void close() {
            attachment.close();
            device.forget(this);
        }

        @Override
        public String toString() {
            return "pin of " + file + " [" + start() + ", " + end() + ") for " + device.name();
        }
    }

    /**
     * Not pinned, and why; nothing is held.
     *
     * @param file the file
     * @param why who refused and why (a range of the file and a reason code: {@code pin_relocatable},
     *            {@code pin_unwatched}, {@code open_for_write}, {@code pin_not_direct})
     */
    record Refused(Path file, Part.Fallback why) implements Pin {}
}
