package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The dmap command as a user runs it: output, JSON fields, exit codes, messages. */
class DmapCommandTest {
    @TempDir Path dir;

    record Result(int code, String out, String err) {}

    static Result dmap(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = Dmap.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Result(code, out.toString(), err.toString());
    }

    static long number(String json, String field) {
        Matcher m = Pattern.compile("\"" + field + "\": (-?\\d+)").matcher(json);
        assertTrue(m.find(), field + " in " + json);
        return Long.parseLong(m.group(1));
    }

    @Test
    void mapJsonHoldsTheFieldsProgramsRead() throws Exception {
        Path f = dir.resolve("data.bin");
        Workloads.write(f, 0, 3 << 20, 11);
        Result r = dmap("map", f.toString(), "--json");
        assertEquals(0, r.code(), r.err());
        for (String field : new String[] {"\"file\"", "\"bytes\"", "\"direct_bytes\"", "\"fallback_bytes\"",
                "\"checksum_ok\": true", "\"seconds\"", "\"segments\"", "\"path\": \"fallback\"", "\"refused_by\"", "\"reason\""}) {
            assertTrue(r.out().contains(field), field + " missing from\n" + r.out());
        }
        assertEquals(3 << 20, number(r.out(), "bytes"));
        assertEquals(3 << 20, number(r.out(), "direct_bytes") + number(r.out(), "fallback_bytes"));
    }

    @Test
    void mapTextShowsRangesAndAMatchingChecksum() throws Exception {
        Path f = dir.resolve("text.bin");
        Workloads.write(f, 0, 1 << 20, 12);
        Result r = dmap("map", f.toString(), "--range", "4096:512K");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("range    [4096, 524288)"), r.out());
        assertTrue(r.out().contains("fallback") && r.out().contains("match"), r.out());
    }

    @Test
    void explainShowsExtentsCacheAndDecisions() throws Exception {
        Path f = dir.resolve("explained.bin");
        Workloads.write(f, 0, 1 << 20, 13);
        Result r = dmap("explain", f.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("extents (FIEMAP") && r.out().contains("page cache") && r.out().contains("decisions"), r.out());
        Result j = dmap("explain", f.toString(), "--json");
        assertEquals(0, j.code(), j.err());
        assertTrue(j.out().contains("\"extents\"") && j.out().contains("\"cached_pages\""), j.out());
    }

    @Test
    void badInputExitsTwoWithAMessageNotAStackTrace() throws Exception {
        Path f = dir.resolve("small.bin");
        Workloads.write(f, 0, 8192, 14);
        String[][] cases = {
                {"map", dir.resolve("missing.bin").toString()},
                {"map", dir.toString()},
                {"map", f.toString(), "--range", "5000:100"},
                {"map", f.toString(), "--range", "0:1G"},
                {"map", f.toString(), "--range", "-4096:100"},
                {"map", f.toString(), "--range", "0:99999999999999999999999"},
                {"map", f.toString(), "--range", "nonsense"},
                {"map", f.toString(), "--device", "toaster0"},
                {"map", f.toString(), "--cached-pages", "maybe"},
                {"map", f.toString(), "--topology", dir.resolve("no-such-topology").toString()},
                {"explain", f.toString(), "--range", "0:1G"},
        };
        for (String[] args : cases) {
            Result r = dmap(args);
            String what = String.join(" ", args) + " ->\n" + r.err();
            assertTrue(r.code() == 2 || (args[args.length - 2].equals("--topology") && r.code() == 1), what);
            assertTrue(r.err().startsWith("dmap: ") || r.err().contains("Unknown") || r.err().contains("Invalid"), what);
            assertTrue(!r.err().contains("\tat io.directmap"), "no stack trace: " + what);
        }
        Result missing = dmap("map", dir.resolve("missing.bin").toString());
        assertTrue(missing.err().contains("missing.bin") && missing.err().contains("no such file"), missing.err());
    }

    @Test
    void demoRunsAndLeavesNothingBehind() throws Exception {
        ScratchFs.requireRootFixtures(ScratchFilesystem.Type.EXT4);
        Result r = dmap("demo", "--json");
        assertEquals(0, r.code(), r.err() + r.out());
        assertTrue(number(r.out(), "direct_bytes") > 0, "the cold file went direct:\n" + r.out());
        assertTrue(!r.out().contains("\"checksum_ok\": false"), r.out());
        // What this demo made (not what other processes attach meanwhile): its mount point and its loop device.
        Matcher file = Pattern.compile("\"file\": \"([^\"]+)\"").matcher(r.out());
        assertTrue(file.find(), r.out());
        Path mountPoint = Path.of(file.group(1)).getParent();
        Matcher loop = Pattern.compile("\"block_device\": \"/dev/(loop\\d+)\"").matcher(r.out());
        assertTrue(loop.find(), "the demo read through its loop device: " + r.out());
        assertTrue(Files.readString(Path.of("/proc/self/mountinfo")).lines().noneMatch(l -> l.contains(" " + mountPoint + " ")),
                "the demo unmounted " + mountPoint);
        assertFalse(Files.exists(mountPoint), "the demo removed " + mountPoint);
        // Autoclear detaches at the last close; an image with no name shows as "(deleted)" while attached.
        Path backing = Path.of("/sys/block", loop.group(1), "loop", "backing_file");
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (Files.exists(backing) && Files.readString(backing).contains("(deleted)") && System.nanoTime() < deadline) Thread.sleep(10);
        assertFalse(Files.exists(backing) && Files.readString(backing).contains("(deleted)"),
                "the demo's " + loop.group(1) + " detached itself: " + (Files.exists(backing) ? Files.readString(backing) : ""));
    }
}
