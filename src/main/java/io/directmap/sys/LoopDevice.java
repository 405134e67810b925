package io.directmap.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A loop device this process attached to a file it holds open, <linux/loop.h> and loop(4):
 * LOOP_CTL_GET_FREE on /dev/loop-control, then LOOP_CONFIGURE (Linux 5.8) with the file's
 * descriptor, so no name is resolved between choosing the device and binding it, and the flags
 * (autoclear, direct I/O, partition scan) are set in the same call that binds it.
 *
 * <p>The device is known by its disk sequence number (BLKGETDISKSEQ, Linux 5.15), which the
 * kernel raises on every attach: /dev/loopN with another diskseq is someone else's attachment,
 * and this class never detaches it. With autoclear the kernel detaches the device itself at its
 * last close (ours, the mount's, mkfs's), so nothing here has to detach by name.
 */
public final class LoopDevice implements AutoCloseable {
    private static final long LOOP_CTL_GET_FREE = 0x4C82, LOOP_CONFIGURE = 0x4C0A, LOOP_CLR_FD = 0x4C01;
    private static final long BLKGETDISKSEQ = 0x80081280L; // _IOR(0x12, 128, __u64), <linux/fs.h>
    private static final int LO_FLAGS_AUTOCLEAR = 4, LO_FLAGS_PARTSCAN = 8, LO_FLAGS_DIRECT_IO = 16;
    // struct loop_config { __u32 fd; __u32 block_size; struct loop_info64 info (232 bytes); __u64 __reserved[8]; }
    private static final long CONFIG_SIZE = 304, CONFIG_FD = 0, CONFIG_LO_FLAGS = 8 + 52;
    private static final int ATTEMPTS = 16; // another process may take the free device between GET_FREE and CONFIGURE

    private final FileHandle device;
    private final int number;
    private final long diskseq;
    private final boolean autoclear;
    private boolean closed;

    private LoopDevice(FileHandle device, int number, long diskseq, boolean autoclear) {
        this.device = device;
        this.number = number;
        this.diskseq = diskseq;
        this.autoclear = autoclear;
    }

    /**
     * Attaches a free loop device to backing and keeps it open. With autoclear, the kernel
     * detaches it when the last opener closes it: a crash of this process then detaches it too,
     * once whatever else holds it (a mount) lets go.
     */
    public static LoopDevice attach(FileHandle backing, boolean autoclear, boolean directIo, boolean partscan)
            throws SysException {
        int flags = (autoclear ? LO_FLAGS_AUTOCLEAR : 0) | (directIo ? LO_FLAGS_DIRECT_IO : 0)
                | (partscan ? LO_FLAGS_PARTSCAN : 0);
        try (Arena arena = Arena.ofConfined();
             FileHandle control = FileHandle.openExisting(Path.of("/dev/loop-control"))) {
            MemorySegment config = arena.allocate(CONFIG_SIZE, 8);
            config.set(JAVA_INT, CONFIG_FD, backing.fd());
            config.set(JAVA_INT, CONFIG_LO_FLAGS, flags);
            MemorySegment seq = arena.allocate(JAVA_LONG);
            SysException busy = null;
            for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
                int n = Ioctl.call(control, LOOP_CTL_GET_FREE, MemorySegment.NULL, "LOOP_CTL_GET_FREE",
                        "load the loop module (modprobe loop) or free a loop device");
                FileHandle dev = FileHandle.openExisting(Path.of("/dev/loop" + n));
                boolean configured = false;
                try {
                    Ioctl.call(dev, LOOP_CONFIGURE, config, "LOOP_CONFIGURE",
                            "needs Linux 5.8 or newer and a backing file on a local file system");
                    configured = true;
                    Ioctl.call(dev, BLKGETDISKSEQ, seq, "BLKGETDISKSEQ", "needs Linux 5.15 or newer");
                    return new LoopDevice(dev, n, seq.get(JAVA_LONG, 0), autoclear);
                } catch (SysException e) {
                    if (configured && !autoclear) {
                        // Attached, but not known by its identity: detach it on our own descriptor, never by name.
                        try {
                            Ioctl.call(dev, LOOP_CLR_FD, MemorySegment.NULL, "LOOP_CLR_FD", "");
                        } catch (SysException c) {
                            e.addSuppressed(c);
                        }
                    }
                    closeQuietly(dev, e);
                    if (e.errno() != Errno.EBUSY) throw e;
                    busy = e;
                }
            }
            throw busy;
        }
    }

    /** /dev/loopN. */
    public String path() { return "/dev/loop" + number; }
    /** loopN, its name under /sys/block. */
    public String name() { return "loop" + number; }
    public long diskseq() { return diskseq; }
    public boolean autoclear() { return autoclear; }

    /** True while /dev/loopN is still this attachment (bound, same diskseq); read from sysfs, opening nothing. */
    public boolean attached() {
        Path dir = Path.of("/sys/block", name());
        try {
            return Files.exists(dir.resolve("loop/backing_file"))
                    && Long.parseLong(Files.readString(dir.resolve("diskseq")).trim()) == diskseq;
        } catch (IOException | NumberFormatException e) {
            return false; // the device is gone (removed) or being torn down
        }
    }

    /** Whether the kernel does direct I/O to the backing file (it falls back to buffered where it cannot). */
    public boolean directIo() {
        try {
            return Files.readString(Path.of("/sys/block", name(), "loop/dio")).trim().equals("1");
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Closes our descriptor. With autoclear the kernel detaches the device at its last close
     * (this one, unless a mount or another process still holds it). Without autoclear, first asks
     * for the detach with LOOP_CLR_FD on our own descriptor (the kernel does it at the last close
     * if the device is busy). While our descriptor is open nobody can detach the device (a
     * detach of a busy device only marks it autoclear), so the device it names is still ours.
     */
    @Override
    public synchronized void close() throws SysException {
        if (closed) return;
        closed = true;
        try {
            if (!autoclear) Ioctl.call(device, LOOP_CLR_FD, MemorySegment.NULL, "LOOP_CLR_FD", "");
        } finally {
            device.close();
        }
    }

    private static void closeQuietly(FileHandle h, Exception into) {
        try {
            h.close();
        } catch (SysException e) {
            into.addSuppressed(e);
        }
    }

    @Override
    public String toString() {
        return path() + " (diskseq " + diskseq + ")";
    }
}
