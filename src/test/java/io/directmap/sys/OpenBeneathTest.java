package io.directmap.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * openat2 RESOLVE_BENEATH refuses every way out of the directory, at the open, and follows what
 * stays inside; statx of a descriptor tells versions apart; SIOCOUTQ names what it was given.
 */
class OpenBeneathTest {
    @TempDir Path dir;

    @Test
    void waysOutOfTheDirectoryAreRefusedAndWaysInsideFollowed() throws Exception {
        Path root = Files.createDirectories(dir.resolve("root"));
        Files.writeString(dir.resolve("secret"), "outside");
        Files.createDirectories(root.resolve("sub"));
        Files.writeString(root.resolve("sub/in.txt"), "inside");
        Files.createSymbolicLink(root.resolve("abs"), dir.resolve("secret"));
        Files.createSymbolicLink(root.resolve("rel-out"), Path.of("../secret"));
        Files.createSymbolicLink(root.resolve("rel-in"), Path.of("sub/in.txt"));
        try (FileHandle r = OpenBeneath.root(root)) {
            for (String out : new String[] {"../secret", "sub/../../secret", "abs", "rel-out", "/etc/passwd"}) {
                SysException e = assertThrows(SysException.class, () -> OpenBeneath.open(r, out).close(), out);
                assertTrue(e.errno() == OpenBeneath.EXDEV || e.errno() == OpenBeneath.ELOOP, out + ": " + e.getMessage());
            }
            try (FileHandle in = OpenBeneath.open(r, "rel-in"); FileHandle same = OpenBeneath.open(r, "sub/../sub/in.txt")) {
                assertTrue(FileVersion.of(in).regular());
                assertEquals(FileVersion.of(in), FileVersion.of(same), "the same file by two names inside");
            }
            SysException missing = assertThrows(SysException.class, () -> OpenBeneath.open(r, "nope").close());
            assertEquals(Errno.ENOENT, missing.errno());
            try (FileHandle d = OpenBeneath.open(r, "sub")) {
                assertFalse(FileVersion.of(d).regular(), "a directory opens, and says it is not a regular file");
            }
        }
    }

    @Test
    void aWriteAfterAStatxGivesAnotherVersion() throws Exception {
        Path f = Files.writeString(dir.resolve("v.txt"), "one");
        try (FileHandle h = FileHandle.openRead(f)) {
            FileVersion.Version before = FileVersion.of(h);
            assertEquals(3, before.size());
            Files.writeString(f, "two");   // same size, at once: only the times tell
            FileVersion.Version after = FileVersion.of(h);
            assertEquals(3, after.size());
            assertNotEquals(before, after, "multigrain timestamps: a change after a statx gets a ctime of its own");
        }
    }

    @Test
    void theSendQueueOfSomethingThatIsNoSocketIsRefused() throws Exception {
        Path f = Files.writeString(dir.resolve("not-a-socket"), "x");
        try (FileHandle h = FileHandle.openRead(f)) {
            SysException e = assertThrows(SysException.class, () -> SocketQueue.unacknowledged(h.fd()));
            assertEquals(Errno.ENOTTY, e.errno(), e.getMessage());
        }
    }
}
