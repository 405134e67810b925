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
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** dmap watch and dmap torture as a user runs them, on a real loop-mounted ext4. */
class CoherenceCommandTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    /**
     * The write must come after the watch says it is mapped, as a user would do it. Waiting only for
     * a lease in /proc/locks was too early: the lease is taken at the start of the first device_map,
     * before the first read, so dd broke it while nothing was mapped yet (mappings 0), and its dirty
     * page 0 was then, rightly, read through the page cache ("8.00 MiB direct, 4 KiB through").
     * /proc/locks names the inode number alone, too, which another mount's file may share.
     */
    @Test
    void watchPrintsTheWriteThatWaitedForTheDeviceAndWhoDidIt() throws Exception {
        String o = watchOneWrite("watched.bin");
        if (o.contains("held back by a read lease")) {
            if ("true".equals(System.getenv("CI"))) org.junit.jupiter.api.Assertions.fail("CI must run with range events: " + o);
            org.junit.jupiter.api.Assumptions.abort("skipped: no range events here: " + o);
        }
        assertTrue(o.contains("changes held back by range events"), o);
        assertTrue(o.matches("(?s).*write +\\[0 B, 4 KiB\\) +held back +1 .*dd \\(pid \\d+\\) writes .*"),
                "one line says a write of the first page waited for the device, and names dd: " + o);
        assertTrue(o.contains("re-faulted:"), o);
    }

    @Test
    void withoutRangeEventsWatchPrintsTheOpenThatWaitedAndWhoDidIt() throws Exception {
        String o = watchOneWrite("watched-lease.bin", "--no-range-events");
        assertTrue(o.contains("changes held back by a read lease"), o);
        assertTrue(o.matches("(?s).*write_open +\\[0, EOF\\) +held back +1 .*pid \\d+ \\((/usr)?/bin/dd .*"),
                "one line says a write waited for the device, and names dd: " + o);
        assertTrue(o.contains("re-faulted:"), o);
    }

    /** Runs dmap watch on a new 8 MiB file until one invalidation, writing its first page with dd once it is mapped; its output. */
    private static String watchOneWrite(String name, String... options) throws Exception {
        Path f = EXT4.file(name);
        Workloads.write(f, 0, 8 << 20, 5);
        Workloads.syncAndEvict(f);
        StringWriter out = new StringWriter(), err = new StringWriter();
        AtomicInteger code = new AtomicInteger(-1);
        List<String> args = new java.util.ArrayList<>(List.of("watch", f.toString(), "--count", "1", "--for", "20"));
        args.addAll(List.of(options));
        Thread watch = Thread.ofPlatform().start(() -> code.set(Dmap.run(new PrintWriter(out, true), new PrintWriter(err, true),
                args.toArray(String[]::new))));
        try {
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (!out.toString().contains("by / detail") && watch.isAlive() && System.nanoTime() < deadline) Thread.sleep(10);
            assertTrue(out.toString().contains("by / detail"), "the watch started within 20 s: " + out + err);
            assertTrue(out.toString().contains(": 8 MiB direct, 0 B through the page cache"), "the cold file was mapped directly: " + out);
            Commands.run("dd", "if=/dev/zero", "of=" + f, "bs=4096", "count=1", "conv=notrunc", "status=none");
        } finally {
            watch.join(30_000); // --for 20 bounds it even when no write came
            Files.deleteIfExists(f);
        }
        assertFalse(watch.isAlive(), "the watch stopped after one invalidation: " + out);
        assertEquals(Dmap.OK, code.get(), err.toString());
        return out.toString();
    }

    @Test
    void tortureReportsNoStaleOrTornBlocks() {
        DmapCommandTest.Result r = DmapCommandTest.dmap("torture", EXT4.mountPoint().toString(), "--reads", "300",
                "--throughput-size", "32M", "--seconds", "0.5");
        assertEquals(Dmap.OK, r.code(), r.out() + r.err());
        assertTrue(r.out().contains(": 0 stale, 0 torn"), r.out());
        assertTrue(r.out().matches("(?s).*alone: +\\d+\\.\\d+ GiB/s.*while dd writes 1% of the file per second: +\\d+\\.\\d+ GiB/s.*"), r.out());
    }

    /**
     * Root runs the tools on files in DIR by path for minutes: a DIR that another user can write
     * (or owns, or sits under a directory another user can write) would let them swap the file.
     */
    @Test
    void tortureRefusesADirectoryAnotherUserCouldSwapFilesIn() throws Exception {
        Path base = EXT4.mountPoint();
        Path open = Files.createDirectory(base.resolve("open"));
        Path sticky = Files.createDirectory(base.resolve("sticky"));
        Path shared = Files.createDirectory(base.resolve("shared"));
        Path under = Files.createDirectory(shared.resolve("mine"));
        Path theirs = Files.createDirectory(base.resolve("theirs"));
        try {
            Commands.run("chmod", "0777", open.toString());
            Commands.run("chmod", "1777", sticky.toString());
            Commands.run("chmod", "0777", shared.toString());
            Commands.run("chown", "65534", theirs.toString());
            for (Path dir : List.of(open, sticky)) {
                DmapCommandTest.Result r = DmapCommandTest.dmap("torture", dir.toString(), "--reads", "10", "--throughput-size", "0");
                assertEquals(Dmap.INVALID_INPUT, r.code(), r.out() + r.err());
                assertTrue(r.err().contains(dir + " can be written by group or others") && r.err().contains("chmod go-w " + dir),
                        "says why and what to do: " + r.err());
            }
            DmapCommandTest.Result r = DmapCommandTest.dmap("torture", under.toString(), "--reads", "10", "--throughput-size", "0");
            assertEquals(Dmap.INVALID_INPUT, r.code(), r.err());
            assertTrue(r.err().contains(shared + " (above " + under + ") can be written by group or others"), r.err());
            r = DmapCommandTest.dmap("torture", theirs.toString(), "--reads", "10", "--throughput-size", "0");
            assertEquals(Dmap.INVALID_INPUT, r.code(), r.err());
            assertTrue(r.err().contains(theirs + " is owned by uid 65534, not by you (uid 0) or root"), r.err());
            for (Path dir : List.of(open, sticky, under, theirs)) {
                try (var files = Files.list(dir)) {
                    assertEquals(List.of(), files.toList(), "nothing was written in a refused directory");
                }
            }
        } finally {
            for (Path p : List.of(open, sticky, under, shared, theirs)) Files.deleteIfExists(p);
        }
    }

    /**
     * The directory's name reaches the tools as one argument, never through a shell: a name that a
     * shell would run ($(...), ;) is just a name. The JSON carries what a program checks.
     */
    @Test
    void tortureHandsTheDirectoryNameToNoShell() throws Exception {
        Path dir = Files.createDirectory(EXT4.mountPoint().resolve("x $(touch dmap-pwned); touch dmap-pwned2 #"));
        try {
            DmapCommandTest.Result r = DmapCommandTest.dmap("torture", dir.toString(), "--reads", "200", "--throughput-size", "0",
                    "--json");
            assertEquals(Dmap.OK, r.code(), r.out() + r.err());
            for (Path where : List.of(Path.of("").toAbsolutePath(), dir, EXT4.mountPoint(), Path.of("/"))) {
                assertFalse(Files.exists(where.resolve("dmap-pwned")) || Files.exists(where.resolve("dmap-pwned2")),
                        "no shell ran the name in " + where);
            }
            assertTrue(r.out().contains("\"passed\": true") && r.out().contains("\"stale\": 0") && r.out().contains("\"torn\": 0"), r.out());
            long p50 = DmapCommandTest.number(r.out(), "p50"); // the first p50 is read_bytes'
            assertTrue(p50 >= 4096 && p50 <= 32 * 4096 && p50 % 4096 == 0, "bytes per device read: " + r.out());
            assertTrue(r.out().matches("(?s).*\"read_window_ns\": \\{\\s*\"p50\": \\d+,\\s*\"p99\": \\d+.*"), r.out());
            assertTrue(r.out().matches("(?s).*\"relocations\": \\{\\s*\"tool\": \"e4defrag\",\\s*\"runs\": [1-9].*"),
                    "e4defrag ran, and its runs are counted: " + r.out());
            try (var files = Files.list(dir)) {
                assertEquals(List.of(), files.toList(), "the torture deleted its files");
            }
        } finally {
            Files.deleteIfExists(dir);
        }
    }
}
