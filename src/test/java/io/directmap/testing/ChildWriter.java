package io.directmap.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Another process that opens a file for writing (dd, an argument list, no shell), as the writer a
 * read lease holds back; and what /proc/locks says about the leases on a file.
 */
public final class ChildWriter implements AutoCloseable {
    private final Process process;
    private final long startedNanos;

    private ChildWriter(Process process) {
        this.process = process;
        this.startedNanos = System.nanoTime();
    }

    /** Starts dd writing one page of zeros at offset 0 of file (no truncation). */
    public static ChildWriter start(Path file) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(List.of("dd", "if=/dev/zero", "of=" + file, "bs=4096", "count=1",
                "conv=notrunc", "status=none")).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD);
        return new ChildWriter(pb.start());
    }

    public boolean isAlive() { return process.isAlive(); }

    /** Waits at most seconds for the writer to finish; returns how long it ran, in seconds; fails if it did not. */
    public double await(long seconds) throws IOException, InterruptedException {
        if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("the writer (dd) was still blocked after " + seconds + " s");
        }
        if (process.exitValue() != 0) throw new AssertionError("dd exited " + process.exitValue());
        return (System.nanoTime() - startedNanos) / 1e9;
    }

    @Override
    public void close() {
        if (process.isAlive()) process.destroyForcibly();
    }

    /**
     * Writes one 4 KiB block of zeros at the start of file with dd, a process of its own, as any
     * writer would; null when it succeeded, else what dd said (e.g. "Text file busy").
     */
    public static String ddFailure(Path file) {
        try {
            io.directmap.tools.Commands.run(List.of("dd", "if=/dev/zero", "of=" + file, "bs=4096", "count=1", "conv=notrunc",
                    "status=none"), null, Duration.ofSeconds(30));
            return null;
        } catch (IOException e) {
            return e.getMessage();
        }
    }

    /** The lease lines of /proc/locks that this process holds on the inode of file. */
    public static List<String> leasesOn(Path file) throws IOException {
        long inode = (Long) Files.getAttribute(file, "unix:ino");
        String pid = Long.toString(ProcessHandle.current().pid());
        return Files.readAllLines(Path.of("/proc/locks")).stream().filter(l -> {
            String[] f = l.trim().split("\\s+");
            return f.length > 5 && f[1].equals("LEASE") && f[4].equals(pid) && f[5].endsWith(":" + inode);
        }).toList();
    }
}
