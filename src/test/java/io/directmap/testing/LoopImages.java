package io.directmap.testing;

import io.directmap.tools.Commands;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Image files, loop devices over them and mounts, made by one test and undone by {@link #close()},
 * pass or fail: it unmounts what it mounted and detaches only a loop device that still reads one
 * of its own images, so a number another process took meanwhile is left alone.
 */
public final class LoopImages implements AutoCloseable {
    private final Path dir;
    private final List<Path> mounts = new ArrayList<>();

    public LoopImages() throws IOException {
        dir = Files.createTempDirectory("dmap-identity-");
    }

    public Path dir() { return dir; }

    /** An ext4 image of 64 MiB holding the files of src (mkfs.ext4 -d: no mount needed). */
    public Path ext4(String name, Path src) throws IOException {
        Path img = dir.resolve(name);
        Commands.run("mkfs.ext4", "-q", "-F", "-b", "4096", "-d", src.toString(), img.toString(), "64M");
        return img;
    }

    /** A raw image of size bytes of seeded data. */
    public Path raw(String name, long size, long seed) throws IOException {
        Path img = dir.resolve(name);
        io.directmap.tools.Workloads.write(img, 0, size, seed);
        return img;
    }

    /** losetup --find: the new /dev/loopN. */
    public String attach(Path image) throws IOException {
        return Commands.run("losetup", "--find", "--show", "--direct-io=on", image.toString()).trim();
    }

    /** losetup on the given number; fails when another process holds it. */
    public void attachAt(String loop, Path image) throws IOException {
        Commands.run("losetup", "--direct-io=on", loop, image.toString());
    }

    public void detach(String loop) throws IOException {
        Commands.run("losetup", "-d", loop);
    }

    public Path mount(String device, String at) throws IOException {
        Path mnt = Files.createDirectories(dir.resolve(at));
        Commands.run("mount", device, mnt.toString());
        mounts.add(mnt);
        return mnt;
    }

    public void umount(Path mnt) throws IOException {
        Commands.run("umount", mnt.toString());
        mounts.remove(mnt);
    }

    /** What the loop device reads now, from sysfs, or null when it is detached. */
    public static Path backingOf(String loop) {
        Path f = Path.of("/sys/block", Path.of(loop).getFileName().toString(), "loop/backing_file");
        try {
            return Path.of(Files.readString(f).trim());
        } catch (IOException e) {
            return null;
        }
    }

    /** Waits (bounded) until the loop device is detached; false if it is still attached at the deadline. */
    public static boolean awaitDetached(String loop, long millis) throws InterruptedException {
        long deadline = System.nanoTime() + millis * 1_000_000L;
        while (backingOf(loop) != null) {
            if (System.nanoTime() > deadline) return false;
            Thread.sleep(5);
        }
        return true;
    }

    @Override
    public void close() throws IOException {
        IOException failure = null;
        for (Path mnt : List.copyOf(mounts).reversed()) {
            try {
                umount(mnt);
            } catch (IOException e) {
                try {
                    Commands.run("umount", "-l", mnt.toString());
                    mounts.remove(mnt);
                } catch (IOException lazy) {
                    e.addSuppressed(lazy);
                }
                if (failure == null) failure = e; else failure.addSuppressed(e);
            }
        }
        for (String line : Commands.run("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").lines().toList()) {
            String[] f = line.trim().split("\\s+", 2);
            if (f.length == 2 && f[1].startsWith(dir.toString() + "/")) {
                try {
                    detach(f[0]);
                } catch (IOException e) {
                    if (failure == null) failure = e; else failure.addSuppressed(e);
                }
            }
        }
        if (mounts.isEmpty()) { // never walk into a file system still mounted
            try (Stream<Path> walk = Files.walk(dir)) {
                for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
            } catch (IOException e) {
                if (failure == null) failure = e; else failure.addSuppressed(e);
            }
        }
        if (failure != null) throw failure;
    }
}
