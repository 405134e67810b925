package io.directmap.dmabuf;

import java.util.List;

/** The answer to an exporter that wants to move a buffer's blocks ({@link DmaBuf#moveNotify}). */
public sealed interface Move {
    /**
     * The blocks must stay: a pinning reference or a pinned attachment holds them. The exporter
     * refuses the change (as a swap file refuses writers: ETXTBSY).
     *
     * @param holders who holds them, for messages: "gpu0 (pinned attachment)", "2 references"
     */
    record Held(List<String> holders) implements Move {
        /** Copies holders. */
        public Held {
            holders = List.copyOf(holders);
        }
    }

    /**
     * Nothing pins the blocks: every dynamic attachment was told and let go; the exporter may move
     * them now, and the next {@link Attachment#map} asks it where they went.
     *
     * @param told how many dynamic attachments were told
     */
    record Moved(int told) implements Move {}
}
