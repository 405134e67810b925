package io.directmap.cli;

import java.io.PrintWriter;
import java.util.function.LongConsumer;

/** A progress bar on standard error for transfers that take more than a moment, when it is a terminal. */
final class Progress implements LongConsumer, AutoCloseable {
    private final PrintWriter err;
    private final long total;
    private final boolean enabled;
    private final long started = System.nanoTime();
    private long lastDraw;
    private boolean drawn;

    Progress(PrintWriter err, long total, boolean enabled) {
        this.err = err;
        this.total = total;
        this.enabled = enabled && System.console() != null;
    }

    @Override
    public synchronized void accept(long done) {
        if (!enabled) return;
        long now = System.nanoTime();
        if (now - started < 500_000_000L || now - lastDraw < 100_000_000L) return;
        lastDraw = now;
        drawn = true;
        int width = 30, filled = (int) (width * Math.min(1.0, (double) done / total));
        err.printf("\r  [%s%s] %5.1f%%  %s", "#".repeat(filled), ".".repeat(width - filled), 100.0 * done / total,
                io.directmap.sys.Units.rate(done, (now - started) / 1e9));
        err.flush();
    }

    @Override
    public synchronized void close() {
        if (drawn) {
            err.print("\r" + " ".repeat(70) + "\r");
            err.flush();
        }
    }
}
