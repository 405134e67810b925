package io.directmap.device;

import java.io.InterruptedIOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;

/**
 * One DMA transfer: its tasks on the worker threads are counted here, started to finished, so the
 * caller can wait for all of them; the first failure stops the rest.
 */
final class DmaBatch {
    private final String device;
    final MemorySegment memory;
    final LongConsumer progress;
    final DmaEngine.Stats stats;
    final AtomicLong done = new AtomicLong();
    volatile boolean stop;
    private int unfinished;     // guarded by this
    private Throwable failure;  // guarded by this

    DmaBatch(String device, MemorySegment memory, LongConsumer progress, DmaEngine.Stats stats) {
        this.device = device;
        this.memory = memory;
        this.progress = progress;
        this.stats = stats;
    }

    /** Records a failure and stops work not yet started; DmaInFlightException is the one thrown. */
    synchronized void fail(Throwable x) {
        stop = true;
        if (failure == null) {
            failure = x;
        } else if (x instanceof DmaInFlightException && !(failure instanceof DmaInFlightException || failure instanceof Error)) {
            x.addSuppressed(failure);
            failure = x;
        } else if (failure != x) {
            failure.addSuppressed(x);
        }
    }

    /** Reports bytes done, unless the transfer failed; a throwing callback fails the transfer. */
    void progressed(long n) {
        if (stop) return;
        try {
            progress.accept(done.addAndGet(n));
        } catch (Throwable x) {
            fail(x);
        }
    }

    synchronized void taskStarted() { unfinished++; }

    synchronized void taskFinished(Throwable x) {
        if (x != null) fail(x);
        if (--unfinished == 0) notifyAll();
    }

    /** Waits for every task, whatever happens; an interrupt stops the rest and fails the transfer. */
    synchronized Throwable awaitAll() {
        boolean interrupted = false;
        while (unfinished > 0) {
            try {
                wait();
            } catch (InterruptedException x) {
                if (!interrupted) {
                    interrupted = true;
                    InterruptedIOException io = new InterruptedIOException(device
                            + ": interrupted during a DMA; it stopped after the reads already started had finished");
                    io.initCause(x);
                    fail(io);
                }
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
        return failure;
    }
}
