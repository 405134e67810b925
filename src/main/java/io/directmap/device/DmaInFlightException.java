package io.directmap.device;

import io.directmap.sys.Units;
import java.io.IOException;

/**
 * A DMA failed and the engine could not wait for reads the kernel had already taken (io_uring_enter
 * kept failing, or an Error struck while waiting). The kernel may still write those reads into the
 * destination memory at any moment, so that memory must never be freed or reused: the engine has
 * set aside the device memory it belongs to (it stays allocated until the process exits), and a
 * caller that passed memory of its own must keep it alive too. The ring was closed, not reused.
 */
public final class DmaInFlightException extends IOException {
    private final int readsInFlight;
    private final long bytes;

    DmaInFlightException(String device, int readsInFlight, long bytes, Throwable cause) {
        super(device + ": " + readsInFlight + " direct read(s) could not be waited for (" + cause.getMessage()
                + "); the kernel may still write them, so the " + Units.bytes(bytes)
                + " of device memory they land in is set aside and never freed or reused while this process runs."
                + " Retry into fresh memory; restart the process to get that memory back", cause);
        this.readsInFlight = readsInFlight;
        this.bytes = bytes;
    }

    DmaInFlightException(String device, long bytes) {
        super(device + ": the destination (" + Units.bytes(bytes) + ") overlaps device memory set aside after a DMA that"
                + " could not be waited for; the kernel may still write there. Read into fresh memory");
        this.readsInFlight = 0;
        this.bytes = bytes;
    }

    /** {@return how many reads were still in flight when the engine gave up waiting (0: refused up front)} */
    public int readsInFlight() { return readsInFlight; }

    /** {@return the size of the destination that must not be freed or reused} */
    public long bytes() { return bytes; }
}
