package io.directmap.block;

/**
 * Looks at the block devices every {@link #INTERVAL_MS} ms, so that a device that shrinks, goes
 * away or comes to mean another device (a reused loop number, a changed backing inode) takes its
 * mappings back even when nothing reads from it, and so that one going away is given back (its
 * descriptor closed) once idle: a loop device we hold open could not detach otherwise. Started
 * with the first device opened; a daemon thread.
 */
final class BlockWatcher implements AutoCloseable {
    static final long INTERVAL_MS = 20;

    private final BlockLayer layer;
    private Thread thread;
    private volatile boolean closed;

    BlockWatcher(BlockLayer layer) {
        this.layer = layer;
    }

    synchronized void start() {
        if (thread != null || closed) return;
        thread = Thread.ofPlatform().daemon().name("dmap-block-watch").start(this::loop);
    }

    private void loop() {
        while (!closed) {
            for (BlockDevice d : layer.watched()) {
                try {
                    layer.check(d);
                } catch (RuntimeException e) {
                    System.getLogger("io.directmap").log(System.Logger.Level.WARNING, "checking " + d.name() + " failed", e);
                }
            }
            try {
                layer.retireIdle();
            } catch (RuntimeException e) {
                System.getLogger("io.directmap").log(System.Logger.Level.WARNING, "closing devices that went away failed", e);
            }
            try {
                Thread.sleep(INTERVAL_MS);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    @Override
    public synchronized void close() {
        closed = true;
        if (thread != null) thread.interrupt();
    }
}
