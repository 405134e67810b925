package io.directmap.sys;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Who has a file open is found by the inode the descriptor holds, under whatever name it was opened. */
class OpenersTest {
    @TempDir Path dir;

    /** A child process (sleep) with name open for appending as its standard output. */
    private static java.lang.Process writerOf(Path name) throws IOException {
        return new ProcessBuilder("sleep", "30").redirectOutput(ProcessBuilder.Redirect.appendTo(name.toFile())).start();
    }

    private static boolean lists(List<String> found, java.lang.Process p) {
        return found.stream().anyMatch(s -> s.startsWith("pid " + p.pid() + " "));
    }

    @Test
    void aWriterThroughAHardLinkIsFound() throws Exception {
        Path file = Files.writeString(dir.resolve("data.bin"), "x");
        Path link = Files.createLink(dir.resolve("other-name.bin"), file);
        java.lang.Process p = writerOf(link);
        try {
            List<String> found = List.of();
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (!lists(found, p) && System.nanoTime() < deadline) {
                found = Openers.of(file, true);
                Thread.sleep(10);
            }
            assertTrue(lists(found, p), "pid " + p.pid() + " writes " + file + " through " + link + ": " + found);
        } finally {
            p.destroy();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void anotherFileWithTheNameNowIsNotTakenForIt() throws Exception {
        Path file = Files.writeString(dir.resolve("data.bin"), "x");
        java.lang.Process p = writerOf(file);
        try {
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (!lists(Openers.of(file, true), p)) {
                assertTrue(System.nanoTime() < deadline, "the writer was never seen");
                Thread.sleep(10);
            }
            Path moved = dir.resolve("moved.bin");
            Files.move(file, moved);
            Files.writeString(file, "a new file with the old name");
            assertFalse(lists(Openers.of(file, true), p), "the writer holds the old inode, not the new file");
            assertTrue(lists(Openers.of(moved, true), p), "and is found under the name its inode has now");
        } finally {
            p.destroy();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
