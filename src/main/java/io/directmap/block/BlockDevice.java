package io.directmap.block;

import io.directmap.pci.Topology.Endpoint;
import io.directmap.sys.BlockIoctl;
import io.directmap.sys.FileHandle;
import io.directmap.sys.SysException;
import io.directmap.sys.SysfsBlock;
import java.nio.file.Path;
import java.util.Optional;

/**
 * One block device as DirectMap uses it: opened once with O_DIRECT (or the reason it cannot be),
 * its geometry, its place on the bus, and how much of its aperture live direct mappings hold.
 */
public final class BlockDevice implements AutoCloseable {
    private final SysfsBlock.Info info;
    private final Endpoint endpoint;
    private final FileHandle handle;          // null when it cannot be opened
    private final SysException openFailure;   // null when it can
    private final BlockIoctl.Geometry geometry;
    private long apertureUsed;
    private volatile long sizeBytes;             // follows resizes; the geometry keeps the size at open
    private volatile String goingAway;           // why, once the device takes its mappings back for good
    private volatile SysfsBlock.State lastState;

    BlockDevice(SysfsBlock.Info info, Endpoint endpoint) {
        this.info = info;
        this.endpoint = endpoint;
        FileHandle h = null;
        SysException failure = null;
        BlockIoctl.Geometry g = null;
        try {
            h = FileHandle.openDirect(info.devNode());
            g = BlockIoctl.geometry(h);
        } catch (SysException e) {
            failure = e;
            if (h != null) {
                try {
                    h.close();
                } catch (SysException c) {
                    e.addSuppressed(c);
                }
                h = null;
            }
        }
        this.handle = h;
        this.openFailure = failure;
        this.geometry = g;
        this.sizeBytes = g == null ? 0 : g.sizeBytes();
        this.lastState = SysfsBlock.state(info.major(), info.minor());
    }

    /** The size now, as last seen (it follows resizes). */
    public long sizeBytes() { return sizeBytes; }

    /** Why the device is going away, or empty while it serves. */
    public Optional<String> goingAway() { return Optional.ofNullable(goingAway); }

    void markGoingAway(String why) { goingAway = why; }

    void resized(long bytes) { sizeBytes = bytes; }

    SysfsBlock.State lastState() { return lastState; }

    void lastState(SysfsBlock.State s) { lastState = s; }

    public String name() { return info.name(); }
    public Path devNode() { return info.devNode(); }
    public SysfsBlock.Info info() { return info; }
    public Endpoint endpoint() { return endpoint; }

    /** The reason it cannot be read directly, or empty when it can. */
    public Optional<SysException> openFailure() { return Optional.ofNullable(openFailure); }

    /** Geometry; only for a device that opened. */
    public BlockIoctl.Geometry geometry() {
        if (geometry == null) throw new IllegalStateException(name() + " did not open: " + openFailure.getMessage());
        return geometry;
    }

    /** The O_DIRECT handle the DMA engine reads through; only for a device that opened. */
    public FileHandle directHandle() {
        if (handle == null) throw new IllegalStateException(name() + " did not open: " + openFailure.getMessage());
        return handle;
    }

    /** Reserves up to bytes of aperture, in whole units; returns what was reserved (0 when full). */
    synchronized long reserveUpTo(long bytes, long unit) {
        long n = Math.min(bytes, (endpoint.apertureBytes() - apertureUsed) / unit * unit);
        if (n <= 0) return 0;
        apertureUsed += n;
        return n;
    }

    synchronized void release(long bytes) {
        apertureUsed = Math.max(0, apertureUsed - bytes);
    }

    public synchronized long apertureUsed() { return apertureUsed; }

    @Override
    public void close() throws SysException {
        if (handle != null) handle.close();
    }

    @Override
    public String toString() {
        return info.devNode().toString();
    }
}
