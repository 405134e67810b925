package io.directmap.block;

import io.directmap.mm.Peer;
import io.directmap.pci.Aperture;
import io.directmap.pci.Topology.Endpoint;
import io.directmap.sys.BlockIoctl;
import io.directmap.sys.FileHandle;
import io.directmap.sys.Statx;
import io.directmap.sys.SysException;
import io.directmap.sys.SysfsBlock;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One block device as DirectMap uses it: opened once with O_DIRECT (or the reason it cannot be),
 * its geometry, its place on the bus, and how much of its aperture live direct mappings hold.
 *
 * <p>It is known by identity, not by name: the descriptor opened from /dev/NAME must be a block
 * device whose st_rdev is the number sysfs gave; the disk sequence number (BLKGETDISKSEQ) tells
 * a reused number apart; a loop device's backing file is the inode LOOP_GET_STATUS64 names. When
 * the number comes to mean another device, this object goes away and a new one is made.
 */
public final class BlockDevice implements Peer, AutoCloseable {
    /** LOOP_MAJOR, <linux/major.h>. */
    private static final int LOOP_MAJOR = 7;

    /** What a loop device reads: the backing file's name to open, and the inode and window the kernel holds. */
    public record Backing(Path file, BlockIoctl.LoopStatus status) {}

    private final SysfsBlock.Info info;
    private final Endpoint endpoint;
    private final FileHandle handle;          // null when it cannot be opened, or is not the device
    private final SysException openFailure;   // null when it opened
    private final String notThisDevice;       // why the node is not the device, or null
    private final BlockIoctl.Geometry geometry;
    private final long diskSeq;               // -1 where the kernel has none
    private final Optional<Backing> backing;  // a loop device's, from the ioctl
    private final Aperture aperture;          // the BAR: live direct mappings' windows
    private final AtomicLong apertureRefusals = new AtomicLong();
    private int directReaders;     // DMAs reading through the O_DIRECT descriptor now; guarded by this
    private FileHandle writeHandle;           // O_RDWR | O_DIRECT, opened on the first WRITE request; guarded by this
    private SysException writeFailure;        // why it could not be opened; guarded by this
    private boolean closed;                   // guarded by this: the descriptor was given back
    private volatile long sizeBytes;             // follows resizes; the geometry keeps the size at open
    private volatile String goingAway;           // why, once the device takes its mappings back for good
    private volatile SysfsBlock.State lastState;

    BlockDevice(SysfsBlock.Info info, Endpoint endpoint) {
        this.info = info;
        this.endpoint = endpoint;
        this.aperture = new Aperture(info.name(), endpoint.apertureBytes());
        this.lastState = SysfsBlock.state(info.major(), info.minor());
        FileHandle h = null;
        SysException failure = null;
        String mismatch = null;
        BlockIoctl.Geometry g = null;
        long seq = lastState.diskSeq();
        Optional<Backing> loop = Optional.empty();
        try {
            h = FileHandle.openProbe(info.devNode(), true);
            mismatch = mismatch(info, Statx.of(h));
            if (mismatch == null) {
                h.blocking();
                g = BlockIoctl.geometry(h);
                seq = BlockIoctl.diskSeq(h).orElse(seq);
                if (info.loop().isPresent() || info.major() == LOOP_MAJOR) {
                    Optional<BlockIoctl.LoopStatus> st = BlockIoctl.loopStatus(h);
                    if (st.isPresent()) {
                        loop = Optional.of(new Backing(info.loop().map(SysfsBlock.Loop::backingFile)
                                .orElse(Path.of(st.get().fileName())), st.get()));
                    } else if (info.loop().isPresent()) {
                        mismatch = info.name() + " was detached after sysfs said it reads " + info.loop().get().backingFile();
                    }
                }
            }
        } catch (SysException e) {
            failure = e;
        }
        if (h != null && (failure != null || mismatch != null)) {
            try {
                h.close();
            } catch (SysException c) {
                if (failure != null) failure.addSuppressed(c);
            }
            h = null;
            g = null;
        }
        this.handle = h;
        this.openFailure = failure;
        this.notThisDevice = mismatch;
        this.geometry = g;
        this.diskSeq = seq;
        this.backing = loop;
        this.sizeBytes = g == null ? 0 : g.sizeBytes();
    }

    /** Why the descriptor opened from the node is not info's device, or null when it is. */
    private static String mismatch(SysfsBlock.Info info, Statx.Info st) {
        if (st.type() != Statx.Type.BLOCK_DEVICE) {
            return info.devNode() + " is " + st.type().description() + ", not block device " + info.name() + " ("
                    + info.number() + "); it is not read";
        }
        if (st.rdevMajor() != info.major() || st.rdevMinor() != info.minor()) {
            return info.devNode() + " is block device " + st.rdev() + ", not " + info.name() + " (" + info.number()
                    + "): the name means another device here (a stale node, or another mount namespace); it is not read";
        }
        return null;
    }

    /**
     * Why this object no longer stands for the device its number names now (sysfsDiskSeq is what
     * sysfs says now, -1 where unknown), or null while it does: a new disk sequence number (a loop
     * detached and attached again, a disk swapped), or a loop device that reads another inode or
     * window than when it was opened.
     */
    String replacedBy(long sysfsDiskSeq) {
        if (diskSeq >= 0 && sysfsDiskSeq >= 0 && sysfsDiskSeq != diskSeq) {
            return name() + " (" + info.number() + ") is another device now: its disk sequence number went from "
                    + diskSeq + " to " + sysfsDiskSeq + " (a loop device detached and attached again, or a disk replaced)";
        }
        if (backing.isEmpty()) return null;
        Optional<BlockIoctl.LoopStatus> now;
        synchronized (this) {
            if (closed || handle == null) return null;
            try {
                now = BlockIoctl.loopStatus(handle);
            } catch (SysException e) {
                return null; // the caller's sysfs check says what happened
            }
        }
        BlockIoctl.LoopStatus was = backing.get().status();
        if (now.isEmpty()) return name() + " was detached from " + was.describe();
        if (!now.get().sameBacking(was)) {
            return name() + " now reads " + now.get().describe() + " (" + now.get().fileName() + "), not "
                    + was.describe() + " (" + backing.get().file() + ")";
        }
        return null;
    }

    /** The size now, as last seen (it follows resizes). */
    public long sizeBytes() { return sizeBytes; }

    /** Why the device is going away, or empty while it serves. */
    public Optional<String> goingAway() { return Optional.ofNullable(goingAway); }

    void markGoingAway(String why) {
        if (goingAway == null) goingAway = why;
    }

    void resized(long bytes) { sizeBytes = bytes; }

    SysfsBlock.State lastState() { return lastState; }

    void lastState(SysfsBlock.State s) { lastState = s; }

    @Override public String name() { return info.name(); }
    public Path devNode() { return info.devNode(); }
    /** The node it is read through: {@link #devNode()}. */
    @Override public Path node() { return info.devNode(); }
    /** The logical block size: a direct read's offset and length are multiples of it; only for a device that opened. */
    @Override public int readAlignment() { return geometry().logicalBlockSize(); }
    public SysfsBlock.Info info() { return info; }
    public Endpoint endpoint() { return endpoint; }

    /** The disk sequence number of the device opened, or -1 where the kernel has none. */
    public long diskSeq() { return diskSeq; }

    /** A loop device's backing file as the kernel holds it (LOOP_GET_STATUS64); empty for others. */
    public Optional<Backing> backing() { return backing; }

    /** The reason it cannot be read directly, or empty when it can. */
    public Optional<SysException> openFailure() { return Optional.ofNullable(openFailure); }

    /** Why the node /dev/NAME is not this device (another device, not a block device), or empty. */
    public Optional<String> notThisDevice() { return Optional.ofNullable(notThisDevice); }

    /** Geometry; only for a device that opened. */
    public BlockIoctl.Geometry geometry() {
        if (geometry == null) throw new IllegalStateException(name() + " did not open: " + whyNotOpen());
        return geometry;
    }

    /** The O_DIRECT handle the DMA engine reads through; only for a device that opened. */
    public FileHandle directHandle() {
        if (handle == null) throw new IllegalStateException(name() + " did not open: " + whyNotOpen());
        return handle;
    }

    private String whyNotOpen() {
        return openFailure != null ? openFailure.getMessage() : notThisDevice;
    }

    /**
     * A window of up to bytes of aperture, in whole units (the logical block size), for the device
     * range from deviceOffset (the window's tag); empty when the aperture has no unit free, or the
     * descriptor was given back.
     */
    synchronized Optional<Aperture.Window> reserveUpTo(long deviceOffset, long bytes, long unit) {
        if (closed) return Optional.empty();
        return aperture.allocateUpTo(bytes, unit, deviceOffset);
    }

    /**
     * Gives back the windows behind [busAddress, busAddress + length) (one grant, or adjacent grants
     * joined); a grant's length is whole logical blocks but for a request's last, so it is rounded
     * up as its window was.
     */
    void release(long busAddress, long length) {
        long unit = geometry == null ? 1 : geometry.logicalBlockSize();
        aperture.free(busAddress - endpoint.busBase(), (length + unit - 1) / unit * unit);
    }

    /** The BAR aperture: its windows, their use order, its fragmentation. */
    public Aperture aperture() { return aperture; }

    public long apertureUsed() { return aperture.usedBytes(); }

    /** How often a direct mapping was refused for a full aperture (APERTURE_EXHAUSTED). */
    public long apertureRefusals() { return apertureRefusals.get(); }

    /** How many windows were taken back from their mappings to make room (the reclaim policy). */
    public long apertureReclaims() { return aperture.reclaims(); }

    void countRefusal() { apertureRefusals.incrementAndGet(); }

    /**
     * A DMA is about to read through the O_DIRECT descriptor: it stays open (its number is not
     * given to another file) until {@link #endDirectRead()}, even if every grant was revoked
     * meanwhile. False when it was already closed: then nothing may be read through it.
     */
    @Override
    public synchronized boolean beginDirectRead() {
        if (closed) return false;
        directReaders++;
        return true;
    }

    /** The DMA begun with {@link #beginDirectRead()} has no read in flight any more. */
    @Override
    public synchronized void endDirectRead() {
        directReaders--;
    }

    /** The O_DIRECT descriptor's number, while a DMA holds it open ({@link #beginDirectRead()}). */
    @Override
    public synchronized int descriptor() {
        if (directReaders == 0) throw new IllegalStateException(name() + ": descriptor() outside beginDirectRead/endDirectRead");
        try {
            return directHandle().fd();
        } catch (SysException e) {
            throw new IllegalStateException(name() + ": the descriptor was closed while a DMA held it", e);
        }
    }

    /**
     * Opens the device for writing with O_DIRECT, once, for WRITE mappings (a read-only mapping
     * never holds it open for writing). Returns why it cannot be, or empty when it is open.
     * Checked to be the device read through (same st_rdev), as the read descriptor was.
     */
    synchronized Optional<String> openForWrite() {
        if (writeHandle != null) return Optional.empty();
        if (closed || handle == null) return Optional.of(name() + " is not open");
        if (writeFailure != null) return Optional.of(writeFailure.getMessage());
        FileHandle h = null;
        try {
            h = FileHandle.openProbeWritable(info.devNode(), true);
            String mismatch = mismatch(info, Statx.of(h));
            if (mismatch != null) {
                h.close();
                return Optional.of(mismatch);
            }
            writeHandle = h.blocking();
            return Optional.empty();
        } catch (SysException e) {
            writeFailure = e;
            if (h != null) {
                try {
                    h.close();
                } catch (SysException c) {
                    e.addSuppressed(c);
                }
            }
            return Optional.of(e.getMessage());
        }
    }

    /** The O_RDWR | O_DIRECT descriptor's number, while a DMA holds the device open ({@link #beginDirectRead()}). */
    @Override
    public synchronized int writeDescriptor() {
        if (directReaders == 0) throw new IllegalStateException(name() + ": writeDescriptor() outside beginDirectRead/endDirectRead");
        if (writeHandle == null) throw new IllegalStateException(name() + " was not opened for writing");
        try {
            return writeHandle.fd();
        } catch (SysException e) {
            throw new IllegalStateException(name() + ": the write descriptor was closed while a DMA held it", e);
        }
    }

    /** fdatasync of the write descriptor: the block device flushes its write cache (REQ_PREFLUSH). */
    @Override
    public void flushWrites() throws SysException {
        FileHandle.fdatasync(writeDescriptor(), info.devNode());
    }

    /**
     * Gives the descriptor back once the device is going away and nothing holds a grant on it, so
     * a loop device being detached (losetup -d) can go: the kernel detaches it at its last close.
     * Returns true when the descriptor is closed (now or before).
     */
    synchronized boolean retireIfIdle(boolean peerMappings) throws SysException {
        if (closed) return true;
        if (goingAway == null || aperture.usedBytes() > 0 || peerMappings || directReaders > 0) return false;
        closed = true;
        closeWriteHandle();
        if (handle != null) handle.close();
        return true;
    }

    private void closeWriteHandle() throws SysException {
        FileHandle w;
        synchronized (this) {
            w = writeHandle;
            writeHandle = null;
        }
        if (w != null) w.close();
    }

    @Override
    public void close() throws SysException {
        synchronized (this) {
            closed = true;
        }
        try {
            closeWriteHandle();
        } finally {
            if (handle != null) handle.close();
        }
    }

    @Override
    public String toString() {
        return info.devNode().toString();
    }
}
