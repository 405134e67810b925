package io.directmap.lang;

import java.util.function.BooleanSupplier;

/** Waiting on an object's monitor for a condition that an interrupt must not cut short. */
public final class Monitors {
    private Monitors() {}

    /**
     * Waits on monitor (which the caller holds) until done is true. An interrupt does not end the
     * wait, because what is waited for (DMA in flight, an invalidation, a system call on memory
     * about to be unmapped) must end first; the interrupt is kept for the caller.
     */
    public static void awaitUninterruptibly(Object monitor, BooleanSupplier done) {
        boolean interrupted = false;
        while (!done.getAsBoolean()) {
            try {
                monitor.wait();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }
}
