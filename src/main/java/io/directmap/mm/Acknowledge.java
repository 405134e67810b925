package io.directmap.mm;

/**
 * Telling someone of an invalidation until they acknowledge: a callback that throws is called
 * again, {@value #TRIES} times in all with 2, 8 and 32 ms between (about 0.1 s), as a driver's
 * transient failure (a busy lock, a full queue) deserves. Used wherever an invalidation must reach
 * its owner before the change it guards goes on: a file system's invalidation and munmap.
 */
public final class Acknowledge {
    /** How often a callback that throws is called in all. */
    public static final int TRIES = 4;

    private Acknowledge() {}

    /**
     * Runs tell until it returns, at most {@value #TRIES} times.
     *
     * @param tell the callback that passes the invalidation on
     * @return null once it returned, else the first failure with the later ones suppressed
     */
    public static Throwable until(Runnable tell) {
        Throwable first = null;
        for (int i = 0; i < TRIES; i++) {
            try {
                tell.run();
                return null;
            } catch (RuntimeException | Error t) {
                if (first == null) first = t; else first.addSuppressed(t);
            }
            if (i + 1 < TRIES) {
                try {
                    Thread.sleep(1L << (2 * i + 1));      // 2, 8, 32 ms
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        return first;
    }
}
