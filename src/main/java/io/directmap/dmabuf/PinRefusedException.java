package io.directmap.dmabuf;

import io.directmap.mm.Refusal;
import java.util.Objects;

/**
 * The exporter refused to let a buffer that only dynamic importers held be pinned again
 * ({@link DmaBuf#attach}, {@link DmaBuf#retain}): a pin now could hold bytes that still change. The
 * refusal is typed (its reason names the refuser); nothing was taken.
 */
public final class PinRefusedException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /** The exporter's refusal. */
    private final transient Refusal refusal;

    /**
     * A refusal for a buffer.
     *
     * @param buffer the buffer's description
     * @param refusal why the exporter refused
     */
    public PinRefusedException(String buffer, Refusal refusal) {
        super(buffer + ": not pinned again: " + Objects.requireNonNull(refusal, "refusal"));
        this.refusal = refusal;
    }

    /** {@return why the exporter refused} */
    public Refusal refusal() { return refusal; }
}
