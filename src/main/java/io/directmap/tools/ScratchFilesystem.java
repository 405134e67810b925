package io.directmap.tools;

import io.directmap.sys.Errno;
import io.directmap.sys.FileHandle;
import io.directmap.sys.LoopDevice;
import io.directmap.sys.Process;
import io.directmap.sys.SysException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A real file system made for a test, the demo or the bench: an image file, a loop device over
 * it (direct I/O on, optionally partitioned), mkfs, a mount on a temporary folder.
 *
 * <p>What a {@code kill -9} leaves behind is decided by construction, not by cleanup code:
 * <ul>
 * <li>The image has no name: it is made with O_TMPFILE in java.io.tmpdir (which must support
 *     O_DIRECT for the loop device's direct I/O), and lives only while our descriptor or the loop
 *     device holds it. Where the file system cannot make unnamed files, it is named and unlinked
 *     right after it is opened.
 * <li>The loop device is attached by {@link LoopDevice} with LOOP_CONFIGURE and autoclear: the
 *     kernel detaches it when its last user closes it (our descriptor, held from attach to
 *     {@link #close()}; mkfs; the mount). Nothing here ever detaches a device by name, so a device
 *     we did not attach is never touched.
 * <li>The mount is the loop device's last user. When this JVM was started through
 *     {@code scripts/java-private-mounts/bin/java} (as {@code ./dmap}, the tests and the bench
 *     are) it runs as root in a private mount namespace of its own, with private propagation: the
 *     mount is invisible outside, and when the process dies the namespace dies with it, which
 *     unmounts, which lets the loop device detach, which frees the image. {@link #diesWithProcess()}
 *     says whether that holds for this mount.
 * </ul>
 * A library user whose JVM is not in such a namespace gets a normal mount: {@link #close()}, or
 * the shutdown hook for one left open, unmounts it; after a {@code kill -9} the mount stays (and
 * holds the loop device and the image) until someone unmounts it, then the device detaches
 * itself and the image is freed. In every case an empty temporary folder (the mount point,
 * {@code dmap-<fs>-*}) may remain after a {@code kill -9}.
 *
 * <p>{@link #create(Type, long, boolean, List, boolean)} with autoclear off gives a loop device
 * as {@code losetup} makes one (for tests of an administrator's {@code losetup -d}); it is
 * detached by {@link #close()} through our own descriptor, and a {@code kill -9} leaves it attached.
 */
public final class ScratchFilesystem implements AutoCloseable {
    public enum Type {
        EXT4("mkfs.ext4", "-q", "-F", "-b", "4096"),
        XFS("mkfs.xfs", "-q", "-f"),
        BTRFS("mkfs.btrfs", "-q", "-f");

        private final List<String> mkfs;

        Type(String... mkfs) { this.mkfs = List.of(mkfs); }

        public String mkfsTool() { return mkfs.getFirst(); }
        public String fsName() { return name().toLowerCase(); }
    }

    /** Set by scripts/java-private-mounts/bin/java to the mount namespace it was started in, before it made its own. */
    static final String OUTER_NAMESPACE_ENV = "DMAP_OUTER_MNT_NS";
    private static final long DETACH_WAIT_NANOS = 5_000_000_000L;

    private static final Set<ScratchFilesystem> LIVE = ConcurrentHashMap.newKeySet();
    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(ScratchFilesystem::closeQuietly),
                "scratch-fs-cleanup"));
    }

    private final Type type;
    private final Path mountPoint;
    private FileHandle image;
    private LoopDevice loop;
    private String fsDevice;
    private boolean mounted;
    private boolean diesWithProcess;

    private ScratchFilesystem(Type type, Path mountPoint) {
        this.type = type;
        this.mountPoint = mountPoint;
    }

    /** What stops a scratch file system from being made here, or empty if nothing does. */
    public static Optional<String> unavailableBecause(Type type) {
        if (!Process.isRoot()) return Optional.of("loop devices and mounts need root (running as uid "
                + Process.effectiveUid() + ")");
        if (!Files.exists(Path.of("/dev/loop-control"))) return Optional.of("/dev/loop-control is missing (modprobe loop)");
        for (String tool : List.of("mount", "umount", type.mkfsTool())) {
            if (!Commands.available(tool)) return Optional.of(tool + " is not installed in " + Commands.PATH
                    + " (scripts/install-test-tools installs it)");
        }
        return Optional.empty();
    }

    /** Makes, attaches (autoclear), formats and mounts; on any failure undoes what it did and throws. */
    public static ScratchFilesystem create(Type type, long sizeBytes, boolean partitioned, List<String> mountOptions)
            throws IOException {
        return create(type, sizeBytes, partitioned, mountOptions, true);
    }

    /** As {@link #create(Type, long, boolean, List)}; autoclear false gives a loop device as losetup makes one. */
    public static ScratchFilesystem create(Type type, long sizeBytes, boolean partitioned, List<String> mountOptions,
            boolean autoclear) throws IOException {
        ScratchFilesystem fs = new ScratchFilesystem(type, Files.createTempDirectory("dmap-" + type.fsName() + "-"));
        LIVE.add(fs);
        try {
            fs.make(sizeBytes, partitioned, mountOptions, autoclear);
            return fs;
        } catch (IOException | RuntimeException e) {
            try {
                fs.close();
            } catch (IOException c) {
                e.addSuppressed(c);
            }
            throw e;
        }
    }

    private void make(long sizeBytes, boolean partitioned, List<String> mountOptions, boolean autoclear)
            throws IOException {
        image = unnamedImage(mountPoint.getParent());
        try (FileChannel ch = FileChannel.open(image(), StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[1]), sizeBytes - 1); // sparse: only the last byte is written
        }
        if (partitioned) {
            // One partition starting at 1 MiB; the script goes on sfdisk's standard input, no shell.
            Commands.run(List.of("sfdisk", "-q", image().toString()), "start=2048, type=83\n");
        }
        loop = LoopDevice.attach(image, autoclear, true, partitioned);
        fsDevice = loop.path();
        if (partitioned) {
            fsDevice = loop.path() + "p1";
            // This kernel may have no partition parsers; then partx adds the partition.
            if (!Files.exists(Path.of(fsDevice))) Commands.run("partx", "-a", loop.path());
        }
        List<String> mkfs = new ArrayList<>(type.mkfs);
        mkfs.add(fsDevice);
        Commands.run(mkfs);
        List<String> mount = new ArrayList<>(List.of("mount"));
        if (!mountOptions.isEmpty()) mount.addAll(List.of("-o", String.join(",", mountOptions)));
        mount.addAll(List.of(fsDevice, mountPoint.toString()));
        Commands.run(mount);
        mounted = true;
        diesWithProcess = inPrivateNamespace() && !propagates(mountPoint);
    }

    /** An image file with no name (O_TMPFILE), or, where dir's file system cannot make one, one unlinked at once. */
    private static FileHandle unnamedImage(Path dir) throws IOException {
        try {
            return FileHandle.createUnnamed(dir);
        } catch (SysException e) {
            if (e.errno() != Errno.EOPNOTSUPP && e.errno() != Errno.EISDIR) throw e;
        }
        Path named = Files.createTempFile(dir, "dmap-image-", ".img");
        try {
            return FileHandle.openExisting(named);
        } finally {
            Files.delete(named);
        }
    }

    public Type type() { return type; }
    public Path mountPoint() { return mountPoint; }
    /** /dev/loopN, the whole loop device. */
    public String loopDevice() { return loop == null ? null : loop.path(); }
    /** The loop device with its identity (diskseq), or null before it is attached. */
    public LoopDevice loop() { return loop; }
    /** The device the file system is on: the loop device, or its first partition. */
    public String fsDevice() { return fsDevice; }
    /** True when the mount is in this process's private mount namespace: a kill -9 then leaves nothing behind. */
    public boolean diesWithProcess() { return diesWithProcess; }

    /**
     * A path that opens the image (it has no name of its own): /proc/PID/fd/N of the descriptor
     * this object holds, usable by other processes (truncate, losetup -c) while it is open.
     */
    public Path image() {
        FileHandle held = image;
        try {
            if (held == null) throw new SysException("image", mountPoint.toString(), Errno.EBADF, "it was closed");
            return Path.of("/proc", Long.toString(ProcessHandle.current().pid()), "fd", Integer.toString(held.fd()));
        } catch (SysException e) {
            throw new IllegalStateException("the image of the scratch file system at " + mountPoint + " is closed", e);
        }
    }

    /** Writes back the file system's dirty data (sync -f). */
    public void sync() throws IOException {
        Commands.run("sync", "-f", mountPoint.toString());
    }

    /**
     * Unmounts, then runs the file system's own checker without repairing (e2fsck -fn, xfs_repair
     * -n, btrfs check --readonly) on its device, which stays attached until {@link #close}.
     * Returns the checker's output; a checker that found anything fails (exit status non-zero)
     * with an IOException that carries its output.
     */
    public synchronized String unmountAndCheck() throws IOException {
        if (mounted) {
            Commands.run("umount", mountPoint.toString());
            mounted = false;
        }
        return switch (type) {
            case EXT4 -> Commands.run("e2fsck", "-fn", fsDevice);
            case XFS -> Commands.run("xfs_repair", "-n", fsDevice);
            case BTRFS -> Commands.run("btrfs", "check", "--readonly", fsDevice);
        };
    }

    /**
     * Unmounts (lazily if busy), closes the loop device and the image (the kernel detaches the
     * device at its last close and frees the image), and removes the mount point. Waits up to 5 s
     * for the detach, and says so if something else still holds the device.
     */
    @Override
    public synchronized void close() throws IOException {
        IOException failure = null;
        boolean lazy = false;
        if (mounted) {
            try {
                Commands.run("umount", mountPoint.toString());
                mounted = false;
            } catch (IOException e) {
                failure = e;
                try {
                    Commands.run("umount", "-l", mountPoint.toString());
                    mounted = false;
                    lazy = true;
                } catch (IOException l) {
                    failure.addSuppressed(l);
                }
            }
        }
        if (loop != null && !mounted) {
            try {
                loop.close();
                failure = awaitDetach(loop, lazy, failure);
                loop = null;
            } catch (IOException e) {
                failure = add(failure, e);
            }
        }
        if (image != null && loop == null) {
            try {
                image.close();
                image = null;
            } catch (IOException e) {
                failure = add(failure, e);
            }
        }
        if (!mounted) {
            try {
                Files.deleteIfExists(mountPoint);
            } catch (IOException e) {
                failure = add(failure, e);
            }
        }
        if (!mounted && loop == null && image == null) LIVE.remove(this);
        if (failure != null) throw failure;
    }

    private static IOException awaitDetach(LoopDevice loop, boolean lazy, IOException failure) throws IOException {
        if (!loop.autoclear() && lazy) return failure;
        long deadline = System.nanoTime() + DETACH_WAIT_NANOS;
        while (loop.attached() && System.nanoTime() < deadline) {
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        if (!loop.attached()) return failure;
        return add(failure, new IOException(loop + " is still attached " + DETACH_WAIT_NANOS / 1_000_000_000L
                + " s after its file system was unmounted" + (lazy ? " (lazily: a file on it is still open)" : "")
                + ": another process holds it open (fuser -v " + loop.path() + "); it detaches itself when that closes"));
    }

    private static IOException add(IOException failure, IOException e) {
        if (failure == null) return e;
        failure.addSuppressed(e);
        return failure;
    }

    /** True when this process's mount namespace is not the one scripts/java-private-mounts/bin/java started in. */
    private static boolean inPrivateNamespace() {
        String outer = System.getenv(OUTER_NAMESPACE_ENV);
        try {
            return outer != null && !outer.isEmpty() && !Files.readSymbolicLink(Path.of("/proc/self/ns/mnt")).toString().equals(outer);
        } catch (IOException e) {
            return false;
        }
    }

    /** True when the mount at dir has a shared peer group (mountinfo "shared:N"): it would appear in other namespaces. */
    private static boolean propagates(Path dir) {
        boolean shared = true; // unknown until our mount's line is found
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                // 36 35 98:0 / /tmp/dmap-ext4-1 rw,relatime shared:7 - ext4 /dev/loop3 rw (the last line for dir is ours)
                String[] f = line.substring(0, Math.max(0, line.indexOf(" - "))).split(" ");
                if (f.length < 6 || !f[4].equals(dir.toString())) continue;
                shared = false;
                for (int i = 6; i < f.length; i++) if (f[i].startsWith("shared:")) shared = true;
            }
            return shared;
        } catch (IOException e) {
            return true;
        }
    }

    private void closeQuietly() {
        try {
            close();
        } catch (IOException e) {
            System.err.println("dmap: cleanup of " + mountPoint + " failed: " + e.getMessage());
        }
    }

    @Override
    public String toString() {
        return type.fsName() + " on " + fsDevice + " at " + mountPoint;
    }
}
