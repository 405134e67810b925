package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.directmap.sys.Signals;
import io.directmap.sys.SysException;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A {@code dmap demo} killed with SIGKILL at any moment leaves no mount, no loop device and no
 * image behind. The child is started through scripts/java-private-mounts/bin/java, the launcher
 * ./dmap execs (./dmap itself would first rebuild its jar with Maven), with a java.io.tmpdir of
 * its own, T: its images are then T/#inode (deleted) in /sys/block/loop and its mounts lie
 * under T, so what is its own is known without touching anything else. Only /sys and /proc are
 * read; no loop device is ever detached here.
 */
class DemoKillTest {
    static final Path LAUNCHER = Path.of("scripts/java-private-mounts/bin/java").toAbsolutePath();
    static final long SECONDS = 1_000_000_000L;
    static final int ATTEMPTS = 5; // the short moments (loop attached, mkfs running) are caught by polling

    enum Moment {
        /** At once: the launcher may not even have started java. */
        STARTED,
        /** The loop device backs onto the child's image, before the mount (the child is stopped to hold it there). */
        ATTACHED,
        /** mkfs.ext4 runs on the loop device; mkfs is stopped, the child killed, then mkfs goes on as an orphan. */
        MKFS,
        /** The file system is mounted in the child's namespace. */
        MOUNTED,
        /** The demo has mapped and read its first file and goes on writing and reading the next. */
        READING
    }

    @ParameterizedTest
    @EnumSource(Moment.class)
    void killedAtAnyMomentLeavesNothingBehind(Moment moment) throws Exception {
        ScratchFs.requireRootFixtures(ScratchFilesystem.Type.EXT4);
        assertTrue(Files.isExecutable(LAUNCHER), LAUNCHER + " (tests run from the repository root)");
        for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
            if (runAndKill(moment)) return;
        }
        fail("the moment " + moment + " was not caught in " + ATTEMPTS + " runs");
    }

    /** One child run, killed at the moment; false if the moment passed before it was seen. */
    private boolean runAndKill(Moment moment) throws Exception {
        Path run = Files.createTempDirectory("dmap-kill-test-");
        Path tmp = Files.createDirectory(run.resolve("tmp")), out = run.resolve("out.txt");
        java.lang.Process child = start(tmp, out, run.resolve("err.txt"));
        long pid = child.pid();
        Optional<ProcessHandle> stoppedMkfs = Optional.empty();
        boolean caught = true;
        try {
            switch (moment) {
                case STARTED -> { }
                case ATTACHED -> {
                    await(child, "a loop device on its image", () -> !loopsOnto(tmp).isEmpty());
                    Signals.send(pid, Signals.SIGSTOP); // hold it before the mount
                    caught = !mountedIn(pid, tmp);
                }
                case MKFS -> {
                    await(child, "mkfs.ext4", () -> mkfs(pid).isPresent() || mountedIn(pid, tmp));
                    stoppedMkfs = mkfs(pid);
                    caught = stop(stoppedMkfs);
                    if (caught) assertFalse(loopsOnto(tmp).isEmpty(), "mkfs runs on a loop device backed by the image");
                }
                case MOUNTED -> {
                    await(child, "its mount", () -> mountedIn(pid, tmp));
                    assertFalse(mountedIn(ProcessHandle.current().pid(), tmp),
                            "the child's mount is not visible in this test's namespace: it is private to the child");
                }
                case READING -> await(child, "its first mapped file", () -> read(out).contains("== cold.bin"));
            }
        } finally {
            child.destroyForcibly();
            assertTrue(child.waitFor(10, TimeUnit.SECONDS), "the killed child is gone");
            stoppedMkfs.ifPresent(h -> signal(h.pid(), Signals.SIGCONT)); // the orphan mkfs finishes and lets go
        }
        assertNothingLeft(tmp, read(run.resolve("err.txt")));
        remove(run);
        return caught;
    }

    private static java.lang.Process start(Path tmp, Path out, Path err) throws Exception {
        String classes = Path.of(Dmap.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
        String picocli = Path.of(picocli.CommandLine.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
        ProcessBuilder pb = new ProcessBuilder(LAUNCHER.toString(), "--enable-native-access=ALL-UNNAMED",
                "-Djava.io.tmpdir=" + tmp, "-cp", classes + ":" + picocli, "io.directmap.cli.Dmap", "demo")
                .redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("DMAP_SHARED_MOUNTS");
        return pb.start();
    }

    /** Within 15 s: no loop device backs onto a file in tmp, nothing is mounted under tmp here, no file is left in tmp. */
    private static void assertNothingLeft(Path tmp, String childErr) throws Exception {
        long deadline = System.nanoTime() + 15 * SECONDS;
        while (System.nanoTime() < deadline && (!loopsOnto(tmp).isEmpty() || mountedIn(ProcessHandle.current().pid(), tmp))) {
            Thread.sleep(10);
        }
        assertEquals(List.of(), loopsOnto(tmp), "no loop device still reads the killed child's image (/sys/block/loop*/loop/backing_file)\n" + childErr);
        assertFalse(mountedIn(ProcessHandle.current().pid(), tmp), "nothing of the child's is mounted in this namespace");
        Optional<ProcessHandle> parent = ProcessHandle.current().parent();
        if (parent.isPresent() && Files.isReadable(Path.of("/proc", Long.toString(parent.get().pid()), "mountinfo"))) {
            assertFalse(mountedIn(parent.get().pid(), tmp), "nor in the namespace Maven runs in");
        }
        try (Stream<Path> all = Files.walk(tmp)) {
            List<Path> files = all.filter(p -> !Files.isDirectory(p)).toList();
            assertEquals(List.of(), files, "the image has no name, so nothing is left in java.io.tmpdir");
        }
    }

    private static void await(java.lang.Process child, String what, BooleanSupplier seen) throws IOException {
        long deadline = System.nanoTime() + 30 * SECONDS;
        while (!seen.getAsBoolean()) {
            if (!child.isAlive()) fail("the demo exited " + child.exitValue() + " before " + what + " was seen");
            if (System.nanoTime() > deadline) fail(what + " did not appear in 30 s");
            LockSupport.parkNanos(200_000);
        }
    }

    /** The loop devices whose backing file is in dir (an unnamed image shows as dir/#inode (deleted)). */
    static List<String> loopsOnto(Path dir) {
        List<String> found = new ArrayList<>();
        try (Stream<Path> devices = Files.list(Path.of("/sys/block"))) {
            for (Path d : devices.filter(p -> p.getFileName().toString().startsWith("loop")).toList()) {
                try {
                    if (Files.readString(d.resolve("loop/backing_file")).startsWith(dir + "/")) found.add(d.getFileName().toString());
                } catch (IOException unbound) {
                    // not attached, or detached as we read
                }
            }
        } catch (IOException e) {
            throw new AssertionError("cannot list /sys/block", e);
        }
        return found;
    }

    /** True if the mount namespace of pid has a mount at or under dir. */
    static boolean mountedIn(long pid, Path dir) {
        try {
            return Files.readAllLines(Path.of("/proc", Long.toString(pid), "mountinfo")).stream()
                    .map(l -> l.split(" ")).anyMatch(f -> f.length > 4 && (f[4].equals(dir.toString()) || f[4].startsWith(dir + "/")));
        } catch (IOException e) {
            return false; // the process is gone
        }
    }

    /**
     * The child's mkfs.ext4, found by reading /proc/N/stat of the processes started after it (pids
     * grow): cheap enough to poll every 0.2 ms, as mkfs on 256 MiB takes about 25 ms.
     */
    private static Optional<ProcessHandle> mkfs(long pid) {
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            for (Path p : procs.toList()) {
                String name = p.getFileName().toString();
                if (!name.chars().allMatch(Character::isDigit) || Long.parseLong(name) <= pid) continue;
                String stat = read(p.resolve("stat")); // pid (comm) state ppid ...
                int close = stat.lastIndexOf(')');
                if (close < 0 || !stat.substring(stat.indexOf('(') + 1, close).equals("mkfs.ext4")) continue;
                if (Long.parseLong(stat.substring(close + 2).split(" ")[1]) == pid) return ProcessHandle.of(Long.parseLong(name));
            }
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
        return Optional.empty();
    }

    /** Stops the process; false if it has already gone. */
    private static boolean stop(Optional<ProcessHandle> h) {
        if (h.isEmpty()) return false;
        try {
            Signals.send(h.get().pid(), Signals.SIGSTOP);
            return h.get().isAlive();
        } catch (SysException e) {
            return false;
        }
    }

    private static void signal(long pid, int signal) {
        try {
            Signals.send(pid, signal);
        } catch (SysException gone) {
            // it exited already
        }
    }

    private static String read(Path p) {
        try {
            return Files.exists(p) ? Files.readString(p) : "";
        } catch (IOException e) {
            return "";
        }
    }

    /** Removes the run's folder, unless something is (wrongly) mounted under it here. */
    private static void remove(Path run) throws IOException {
        if (mountedIn(ProcessHandle.current().pid(), run)) return;
        try (Stream<Path> w = Files.walk(run)) {
            for (Path p : w.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
