package io.directmap.sys;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * A real file system made for a test or the demo: a sparse image file, a loop device over it
 * (direct I/O on, optionally partitioned), mkfs, a mount under a temporary folder. {@link #close()}
 * unmounts, detaches and deletes everything it made, whatever failed before; a shutdown hook does
 * the same for any left open when the JVM exits. It never touches a device it did not create.
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

    private static final Set<ScratchFilesystem> LIVE = ConcurrentHashMap.newKeySet();
    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(ScratchFilesystem::closeQuietly),
                "scratch-fs-cleanup"));
    }

    private final Type type;
    private final Path dir;
    private final Path image;
    private final Path mountPoint;
    private String loopDevice;
    private String fsDevice;
    private boolean mounted;

    private ScratchFilesystem(Type type, Path dir) {
        this.type = type;
        this.dir = dir;
        this.image = dir.resolve(type.fsName() + ".img");
        this.mountPoint = dir.resolve("mnt");
    }

    /** What stops a scratch file system from being made here, or empty if nothing does. */
    public static Optional<String> unavailableBecause(Type type) {
        if (!Process.isRoot()) return Optional.of("loop devices and mounts need root (running as uid "
                + Process.effectiveUid() + ")");
        for (String tool : List.of("losetup", "mount", "umount", type.mkfsTool())) {
            if (!Commands.available(tool)) return Optional.of(tool + " is not installed (.ci/run installs it)");
        }
        return Optional.empty();
    }

    /** Makes, attaches, formats and mounts; on any failure undoes what it did and throws. */
    public static ScratchFilesystem create(Type type, long sizeBytes, boolean partitioned, List<String> mountOptions)
            throws IOException {
        Path dir = Files.createTempDirectory("dmap-" + type.fsName() + "-");
        ScratchFilesystem fs = new ScratchFilesystem(type, dir);
        LIVE.add(fs);
        try {
            fs.make(sizeBytes, partitioned, mountOptions);
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

    private void make(long sizeBytes, boolean partitioned, List<String> mountOptions) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(image, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            ch.truncate(0);
            ch.position(sizeBytes - 1).write(java.nio.ByteBuffer.wrap(new byte[1]));
        }
        if (partitioned) {
            // One partition starting at 1 MiB; this kernel has no partition parsers, so partx adds it.
            Commands.run(List.of("sh", "-c", "echo 'start=2048, type=83' | sfdisk -q " + image));
        }
        List<String> attach = new ArrayList<>(List.of("losetup", "--find", "--show", "--direct-io=on"));
        if (partitioned) attach.add("--partscan");
        attach.add(image.toString());
        loopDevice = Commands.run(attach).trim();
        fsDevice = loopDevice;
        if (partitioned) {
            fsDevice = loopDevice + "p1";
            if (!Files.exists(Path.of(fsDevice))) Commands.run("partx", "-a", loopDevice);
        }
        List<String> mkfs = new ArrayList<>(type.mkfs);
        mkfs.add(fsDevice);
        Commands.run(mkfs);
        Files.createDirectories(mountPoint);
        List<String> mount = new ArrayList<>(List.of("mount"));
        if (!mountOptions.isEmpty()) mount.addAll(List.of("-o", String.join(",", mountOptions)));
        mount.addAll(List.of(fsDevice, mountPoint.toString()));
        Commands.run(mount);
        mounted = true;
    }

    public Type type() { return type; }
    public Path mountPoint() { return mountPoint; }
    /** /dev/loopN, the whole loop device. */
    public String loopDevice() { return loopDevice; }
    /** The device the file system is on: the loop device, or its first partition. */
    public String fsDevice() { return fsDevice; }

    /** Drops clean page-cache pages of the whole file system's device and files (echo 1 would be global). */
    public void sync() throws IOException {
        Commands.run("sync", "-f", mountPoint.toString());
    }

    @Override
    public void close() throws IOException {
        IOException failure = null;
        if (mounted) {
            try {
                Commands.run("umount", mountPoint.toString());
                mounted = false;
            } catch (IOException e) {
                failure = e;
                try {
                    Commands.run("umount", "-l", mountPoint.toString());
                    mounted = false;
                } catch (IOException lazy) {
                    failure.addSuppressed(lazy);
                }
            }
        }
        if (loopDevice != null && !mounted && !stillAttached()) loopDevice = null; // autoclear already detached it
        if (loopDevice != null && !mounted) {
            try {
                Commands.run("losetup", "-d", loopDevice);
                loopDevice = null;
            } catch (IOException e) {
                if (failure == null) failure = e; else failure.addSuppressed(e);
            }
        }
        if (!mounted) {
            try (Stream<Path> walk = Files.walk(dir)) {
                for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
            } catch (IOException e) {
                if (failure == null) failure = e; else failure.addSuppressed(e);
            }
        }
        LIVE.remove(this);
        if (failure != null) throw failure;
    }

    /** True while our loop device still reads our image (losetup -d on a busy device detaches at the last close). */
    private boolean stillAttached() {
        Path backing = Path.of("/sys/block", Path.of(loopDevice).getFileName().toString(), "loop/backing_file");
        try {
            return Files.exists(backing) && Path.of(Files.readString(backing).trim()).equals(image.toAbsolutePath());
        } catch (IOException e) {
            return true;
        }
    }

    /** The image file behind the loop device. */
    public Path image() { return image; }

    private void closeQuietly() {
        try {
            close();
        } catch (IOException e) {
            System.err.println("dmap: cleanup of " + dir + " failed: " + e.getMessage());
        }
    }

    @Override
    public String toString() {
        return type.fsName() + " on " + fsDevice + " at " + mountPoint;
    }
}
