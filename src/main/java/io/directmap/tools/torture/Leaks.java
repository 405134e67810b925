package io.directmap.tools.torture;

import io.directmap.sys.FileHandle;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

/**
 * What a run may leave behind, to compare before and after it (a test of a failure path asserts
 * {@code Leaks.of(dir).since(before)} is empty): FileHandles open in this JVM, this process's
 * descriptors on anything under dir or on a loop device, loop devices backed by a file under dir,
 * mounts under dir, child processes still running, and threads of the torture still alive.
 */
public record Leaks(int fileHandles, TreeSet<String> descriptors, TreeSet<String> loops, TreeSet<String> mounts,
                    TreeSet<String> children, TreeSet<String> threads) {
    private static final List<String> THREAD_PREFIXES = List.of("torture-", "one-percent-writer");

    /** The resources of this process that concern dir, now. */
    public static Leaks of(Path dir) throws IOException {
        String under = dir.toRealPath() + "/";
        TreeSet<String> fds = new TreeSet<>(), loops = new TreeSet<>(), mounts = new TreeSet<>(), children = new TreeSet<>(),
                threads = new TreeSet<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path fd : s) {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    if (target.startsWith(under) || target.startsWith("/dev/loop")) fds.add(fd.getFileName() + " -> " + target);
                } catch (IOException e) {
                    // closed meanwhile (the directory stream's own descriptor, a worker's)
                }
            }
        }
        try (DirectoryStream<Path> s = Files.newDirectoryStream(Path.of("/sys/block"), "loop*")) {
            for (Path loop : s) {
                Path backing = loop.resolve("loop/backing_file");
                try {
                    String file = Files.readString(backing).trim();
                    if (file.startsWith(under)) loops.add(loop.getFileName() + " -> " + file);
                } catch (IOException e) {
                    // not attached
                }
            }
        }
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String[] f = line.split(" ");
            if (f.length > 4 && (f[4] + "/").startsWith(under) && !(f[4] + "/").equals(under)) mounts.add(f[4]);
        }
        ProcessHandle.current().children().forEach(p -> children.add(p.pid() + " " + p.info().commandLine().orElse("?")));
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (THREAD_PREFIXES.stream().anyMatch(t.getName()::startsWith)) threads.add(t.getName());
        }
        return new Leaks(FileHandle.openCount(), fds, loops, mounts, children, threads);
    }

    /** What is open now and was not at before, one line each; empty when nothing leaked. */
    public List<String> since(Leaks before) {
        List<String> out = new ArrayList<>();
        if (fileHandles > before.fileHandles) out.add((fileHandles - before.fileHandles) + " FileHandles more open");
        added("descriptor", before.descriptors, descriptors, out);
        added("loop device", before.loops, loops, out);
        added("mount", before.mounts, mounts, out);
        added("child process", before.children, children, out);
        added("thread", before.threads, threads, out);
        return out;
    }

    private static void added(String what, TreeSet<String> was, TreeSet<String> now, List<String> out) {
        for (String s : now) if (!was.contains(s)) out.add(what + " " + s);
    }
}
