package io.directmap.device;

import java.io.IOException;

/**
 * A device write that failed: which bytes of the source memory (memoryOffset, length) did not
 * reach their target. Writes not yet started when it failed were not started at all, so their
 * blocks keep the old bytes; writes that completed keep the new ones. The cause says why.
 */
final class WriteFailure extends IOException {
    private static final long serialVersionUID = 1L;
    private final long memoryOffset, length;

    WriteFailure(long memoryOffset, long length, IOException cause) {
        super(cause.getMessage(), cause);
        this.memoryOffset = memoryOffset;
        this.length = length;
    }

    long memoryOffset() { return memoryOffset; }
    long length() { return length; }
}
