package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.RandomAccessFile;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A window size the engine cannot use, given to dmap watch: exit code 2, a message that says what
 * to give, and no stack trace (the library's refusal is {@code io.directmap.device.BindingWindowsTest}).
 */
class WatchWindowTest {
    static final long GiB = 1L << 30;

    @TempDir Path dir;
    Path big;

    @BeforeEach
    void open() throws IOException {
        big = dir.resolve("big.bin");
        try (RandomAccessFile f = new RandomAccessFile(big.toFile(), "rw")) {
            f.setLength(4 * GiB);   // sparse: nothing is written, nothing is read
        }
    }

    record Result(int code, String out, String err) {}

    static Result dmap(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = Dmap.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Result(code, out.toString(), err.toString());
    }

    @Test
    void watchWithTooSmallAWindowSaysWhatToGiveAndExitsTwo() {
        Result r = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> dmap("watch", big.toString(), "--window", "4K", "--for", "1"));
        assertEquals(Dmap.INVALID_INPUT, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("1048576 windows") && r.err().contains("at least 256 KiB"), r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
    }

    @Test
    void watchWithAWindowThatIsNotAPageMultipleExitsTwo() {
        for (String w : new String[] {"0", "5000", "-4K", "lots"}) {
            Result r = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> dmap("watch", big.toString(), "--window", w, "--for", "1"));
            assertEquals(Dmap.INVALID_INPUT, r.code(), w + ": " + r.out() + r.err());
            assertTrue(r.err().contains("--window"), r.err());
            assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
            assertFalse(r.err().contains("Usage:"), "one line that says what is wrong, not a usage dump: " + r.err());
        }
    }
}
