package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.mm.InvalidRequestException;
import io.directmap.sys.FileHandle;
import io.directmap.sys.Statx;
import io.directmap.tools.Commands;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A file is known by its inode, not its name: what is opened is checked with fstat against what
 * was stat'ed, and a FIFO never makes open() wait for a writer.
 */
class OpenFileIdentityTest {
    /** Opening a FIFO without O_NONBLOCK waits for a writer forever; every refusal here is immediate. */
    static final Duration BOUND = Duration.ofSeconds(10);

    @TempDir Path dir;

    private Path fifo(String name) throws IOException {
        Path p = dir.resolve(name);
        Commands.run("mkfifo", p.toString());
        return p;
    }

    @Test
    void aFifoGivenToMmapIsRefusedAtOnceAndNamed() throws IOException {
        Path p = fifo("pipe");
        int handles = FileHandle.openCount();
        try (FsStack mm = FsStack.open()) {
            String m = assertTimeoutPreemptively(BOUND,
                    () -> assertThrows(InvalidRequestException.class, () -> mm.mmap(p)).getMessage());
            assertTrue(m.contains(p.toString()) && m.contains("FIFO"), m);
        }
        assertEquals(handles, FileHandle.openCount(), "nothing left open");
    }

    @Test
    void aFileSwappedForAFifoBetweenStatAndOpenIsRefusedNotWaitedOn() throws IOException {
        Path p = dir.resolve("data.bin");
        Workloads.write(p, 0, 1 << 16, 7);
        Statx.Info seen = Statx.of(p);
        Files.delete(p);
        Commands.run("mkfifo", p.toString());
        int handles = FileHandle.openCount();
        String m = assertTimeoutPreemptively(BOUND,
                () -> assertThrows(InvalidRequestException.class, () -> OpenFile.open(p, seen)).getMessage());
        assertTrue(m.contains(p.toString()) && m.contains("replaced between stat and open") && m.contains("FIFO"), m);
        assertEquals(handles, FileHandle.openCount(), "the probe descriptor was closed");
    }

    @Test
    void aFileRenamedOverBetweenStatAndOpenIsRefused() throws IOException {
        Path p = dir.resolve("data.bin"), other = dir.resolve("other.bin");
        Workloads.write(p, 0, 1 << 16, 7);
        Workloads.write(other, 0, 1 << 16, 8);
        Statx.Info seen = Statx.of(p);
        Files.move(other, p, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        String m = assertThrows(InvalidRequestException.class, () -> OpenFile.open(p, seen)).getMessage();
        assertTrue(m.contains(p.toString()) && m.contains("replaced between stat and open")
                && m.contains("/" + seen.inode() + " became "), m);
    }

    @Test
    void aFileThatIsStillTheSameOpensAndReadsWithoutNonBlocking() throws IOException {
        Path p = dir.resolve("data.bin");
        Workloads.write(p, 0, 1 << 16, 9);
        try (OpenFile f = OpenFile.open(p, Statx.of(p))) {
            assertTrue(f.stat().sameInode(Statx.of(p)));
            var buf = java.lang.foreign.Arena.ofAuto().allocate(1 << 16);
            assertEquals(1 << 16, f.handle().preadFully(buf, 0));
            org.junit.jupiter.api.Assertions.assertArrayEquals(Workloads.read(p, 0, 1 << 16),
                    buf.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
            assertEquals(0, fdFlags(f) & 04000, "O_NONBLOCK was cleared after the check");
        }
    }

    /** The descriptor's open flags as the kernel shows them (/proc/self/fdinfo, octal). */
    private static int fdFlags(OpenFile f) throws IOException {
        try (var fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path fd : fds) {
                try {
                    if (!Files.readSymbolicLink(fd).equals(f.path())) continue;
                } catch (IOException e) {
                    continue;
                }
                for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo", fd.getFileName().toString()))) {
                    if (line.startsWith("flags:")) return Integer.parseInt(line.substring(6).trim(), 8);
                }
            }
        }
        throw new AssertionError("no descriptor for " + f.path() + " in /proc/self/fd");
    }
}
