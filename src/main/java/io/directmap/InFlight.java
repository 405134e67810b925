package io.directmap;

import io.directmap.lang.Monitors;

/**
 * Counts the reads running on something (a mapping, a buffer) so that closing it waits for them:
 * memory a read may still write into is never given back while the read runs. It also orders the
 * closes of that thing: the first {@link #close} closes it, and every later or concurrent one
 * waits until the first has said {@link #closed}, so no caller returns from close() while
 * something is still being let go of.
 */
final class InFlight {
    private final String what;
    private final String advice;
    private int running;      // guarded by this
    private boolean closed;   // guarded by this
    private boolean done;     // guarded by this: the first close has finished

    /**
     * @param what names the thing in the message a read on it gets once it is closed
     * @param advice what to do instead, such as "allocate another"
     */
    InFlight(String what, String advice) {
        this.what = what;
        this.advice = advice;
    }

    /** One more read, or IllegalStateException once closed. */
    synchronized void enter() {
        if (closed) throw new IllegalStateException(what + " is closed; " + advice);
        running++;
    }

    synchronized void exit() {
        running--;
        if (running == 0) notifyAll();
    }

    /**
     * Refuses new reads and waits for the running ones, then returns true: the caller closes the
     * rest and calls {@link #closed} (in a finally). A later or concurrent call waits until the
     * first caller has called closed(), uninterruptibly, and returns false.
     */
    synchronized boolean close() {
        if (closed) {
            Monitors.awaitUninterruptibly(this, () -> done);
            return false;
        }
        closed = true;
        Monitors.awaitUninterruptibly(this, () -> running == 0);
        return true;
    }

    /** The first close has finished: the closes waiting for it return. */
    synchronized void closed() {
        done = true;
        notifyAll();
    }

    synchronized boolean isClosed() {
        return closed;
    }
}
