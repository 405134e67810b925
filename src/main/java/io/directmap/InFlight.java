package io.directmap;

import io.directmap.lang.Monitors;

/**
 * Counts the reads running on something (a mapping, a buffer) so that closing it waits for them:
 * memory a read may still write into is never given back while the read runs.
 */
final class InFlight {
    private final String what;
    private int running;      // guarded by this
    private boolean closed;   // guarded by this

    /** what names the thing in the message a read on it gets once it is closed. */
    InFlight(String what) {
        this.what = what;
    }

    /** One more read, or IllegalStateException once closed. */
    synchronized void enter() {
        if (closed) throw new IllegalStateException(what + " is closed; open it again to read");
        running++;
    }

    synchronized void exit() {
        running--;
        if (running == 0) notifyAll();
    }

    /** Refuses new reads and waits for the running ones; false when it was closed already. */
    synchronized boolean close() {
        if (closed) return false;
        closed = true;
        Monitors.awaitUninterruptibly(this, () -> running == 0);
        return true;
    }

    synchronized boolean isClosed() {
        return closed;
    }
}
