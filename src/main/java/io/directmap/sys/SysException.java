package io.directmap.sys;

import java.io.IOException;

/**
 * A failed system call: which call, on what, the errno, and what a person can do about it.
 * Callers above {@code sys} test {@link #errno()} against {@link Errno} constants; they never see
 * a raw return code.
 */
public final class SysException extends IOException {
    private final String call;
    private final String target;
    private final int errno;

    public SysException(String call, String target, int errno, String hint) {
        super(message(call, target, errno, hint));
        this.call = call;
        this.target = target;
        this.errno = errno;
    }

    private static String message(String call, String target, int errno, String hint) {
        String m = call + "(" + target + ") failed: " + Errno.name(errno) + " (" + Errno.describe(errno) + ")";
        return hint == null || hint.isEmpty() ? m : m + "; " + hint;
    }

    public String call() { return call; }
    public String target() { return target; }
    public int errno() { return errno; }
    public String errnoName() { return Errno.name(errno); }

    /** "EPERM (Operation not permitted)", for refusal details. */
    public String shortReason() {
        return Errno.name(errno) + " (" + Errno.describe(errno) + ")";
    }
}
