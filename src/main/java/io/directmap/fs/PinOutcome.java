package io.directmap.fs;

import io.directmap.dmabuf.DmaBuf;
import io.directmap.mm.Refusal;
import java.util.List;

/** What device_map with DEVICE_MAP_FLAG_PIN gave ({@link FsLayer#pin}): a dma_buf, or a refusal with its reason. */
public sealed interface PinOutcome {
    /**
     * Pinned: buf holds the blocks of the range (one reference, the caller's) until its last
     * release; until then every open for writing and every change of the range by another
     * descriptor is refused with ETXTBSY, while a pinning reference or a pinned attachment lives.
     *
     * @param buf the buffer
     * @param segments the direct segments it holds, in order
     */
    record Pinned(DmaBuf buf, List<io.directmap.mm.Segment> segments) implements PinOutcome {
        /** Copies segments. */
        public Pinned {
            segments = List.copyOf(segments);
        }
    }

    /**
     * Refused: nothing is held, nothing is left marked.
     *
     * @param refusal who refused and why (btrfs, no change watch, open for writing elsewhere, part of the range not direct)
     */
    record Refused(Refusal refusal) implements PinOutcome {}
}
