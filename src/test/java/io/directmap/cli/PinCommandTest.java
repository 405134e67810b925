package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.ToNumberPolicy;
import io.directmap.testing.ChildWriter;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code dmap pin} in a child JVM holds a pin that other processes (and this one) cannot write
 * through; {@code dmap pins} lists it with its holder; kill -9 of the holder leaves nothing denied:
 * the same write succeeds at once, and the pin's record is named stale and removed.
 */
class PinCommandTest {
    static final long MiB = 1 << 20;
    static final int DENIED_OPENS = 50;
    static final Gson GSON = new GsonBuilder().setObjectToNumberStrategy(ToNumberPolicy.LONG_OR_DOUBLE).create();

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @RegisterExtension
    static final ScratchFs BTRFS = new ScratchFs(ScratchFilesystem.Type.BTRFS);

    @TempDir Path tmp;
    Path run;

    @BeforeEach
    void statsDir() {
        run = tmp.resolve("run-directmap");
        System.setProperty(StatsFiles.DIR_PROPERTY, run.toString());
    }

    @AfterEach
    void back() {
        System.clearProperty(StatsFiles.DIR_PROPERTY);
    }

    @Test
    void aPinHeldByAnotherProcessRefusesWritersAndDiesWithIt() throws Exception {
        Path file = EXT4.file("pinned-by-child.bin");
        Workloads.write(file, 0, 8 * MiB, 11);
        Workloads.syncAndEvict(file);
        java.lang.Process child = start(file);
        try {
            BlockingQueue<String> lines = drain(child);
            String first = awaitLine(lines, "pinned ", child);
            assertTrue(first.contains("the same bytes as the file"), first);

            String why = ChildWriter.ddFailure(file);
            assertTrue(why != null && why.contains("Text file busy"), "dd must get ETXTBSY, got: " + why);
            measureDeniedOpens(file);

            Map<String, Object> pins = pinsJson();
            List<?> listed = (List<?>) pins.get("pins");
            assertEquals(1, listed.size(), pins.toString());
            Map<?, ?> p = (Map<?, ?>) listed.getFirst();
            assertEquals(child.pid(), ((Number) p.get("pid")).longValue());
            assertEquals(file.toString(), p.get("file"));
            assertEquals(0L, ((Number) p.get("start")).longValue());
            assertEquals(4 * MiB, ((Number) p.get("end")).longValue());
            assertEquals("gpu0", p.get("device"));

            child.destroyForcibly();   // SIGKILL
            assertTrue(child.waitFor(30, TimeUnit.SECONDS));
            assertNull(ChildWriter.ddFailure(file), "the holder was killed: the kernel dropped its fanotify group, the write goes through at once");

            Map<String, Object> after = pinsJson();
            assertEquals(List.of(), after.get("pins"));
            String ignored = after.get("ignored").toString();
            assertTrue(ignored.contains("process " + child.pid() + " is gone"), ignored);
        } finally {
            child.destroyForcibly();
            child.waitFor(30, TimeUnit.SECONDS);
        }
    }

    @Test
    void aPinForZeroSecondsPrintsItsSegmentsAsJsonAndLetsGo() throws Exception {
        Path file = EXT4.file("pinned-briefly.bin");
        Workloads.write(file, 0, 2 * MiB, 9);
        Workloads.syncAndEvict(file);
        DmapCommandTest.Result r = DmapCommandTest.dmap("pin", file.toString(), "--range", "4096:1M", "--for", "0", "--json");
        assertEquals(Dmap.OK, r.code(), r.out() + r.err());
        @SuppressWarnings("unchecked")
        Map<String, Object> m = GSON.fromJson(r.out(), Map.class);
        assertEquals(true, m.get("pinned"));
        assertEquals(true, m.get("checksum_ok"));
        assertEquals(4096L, ((Number) m.get("start")).longValue());
        assertEquals(MiB, ((Number) m.get("end")).longValue());
        List<?> segments = (List<?>) m.get("segments");
        assertTrue(!segments.isEmpty(), m.toString());
        assertEquals(4096L, ((Number) ((Map<?, ?>) segments.getFirst()).get("start")).longValue());
        assertNull(ChildWriter.ddFailure(file), "the pin ended with the command");
        assertEquals(List.of(), pinsJson().get("pins"), "and its record went with it");
    }

    @Test
    void aPinOnBtrfsIsRefusedWithItsReasonAndExitsFailed() throws Exception {
        Path file = BTRFS.file("not-pinned.bin");
        Workloads.write(file, 0, MiB, 5);
        Workloads.syncAndEvict(file);
        DmapCommandTest.Result r = DmapCommandTest.dmap("pin", file.toString(), "--json");
        assertEquals(Dmap.FAILED, r.code(), r.out() + r.err());
        @SuppressWarnings("unchecked")
        Map<String, Object> m = GSON.fromJson(r.out(), Map.class);
        assertEquals(false, m.get("pinned"));
        assertEquals("pin_relocatable", m.get("reason"));
        assertEquals("filesystem", m.get("refused_by"));
        assertTrue(r.err().contains("refused") && r.err().contains("balance"), r.err());
        assertEquals(List.of(), ((Map<?, ?>) pinsJson()).get("pins"), "nothing was pinned, nothing published");
    }

    /**
     * The time from a denied writer's open to its error, as the writer sees it: N opens for writing
     * from this JVM (its ordinary descriptors are watched as any other process's). Printed for the
     * README; nothing is asserted of the speed.
     */
    private static void measureDeniedOpens(Path file) {
        long[] nanos = new long[DENIED_OPENS];
        for (int i = 0; i < DENIED_OPENS; i++) {
            long t0 = System.nanoTime();
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                fail("open for writing of a pinned file succeeded: " + ch);
            } catch (FileSystemException e) {
                nanos[i] = System.nanoTime() - t0;
                assertTrue(String.valueOf(e.getReason()).contains("Text file busy"), e.toString());
            } catch (IOException e) {
                fail(e);
            }
        }
        java.util.Arrays.sort(nanos);
        System.out.printf("denied open -> ETXTBSY over %d opens: min %.1f us, median %.1f us, max %.1f us%n", DENIED_OPENS,
                nanos[0] / 1e3, nanos[DENIED_OPENS / 2] / 1e3, nanos[DENIED_OPENS - 1] / 1e3);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> pinsJson() {
        DmapCommandTest.Result r = DmapCommandTest.dmap("pins", "--json");
        assertEquals(Dmap.OK, r.code(), r.out() + r.err());
        return GSON.fromJson(r.out(), Map.class);
    }

    private java.lang.Process start(Path file) throws Exception {
        String cp = String.join(":", jar(Dmap.class), jar(picocli.CommandLine.class), jar(Gson.class));
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-D" + StatsFiles.DIR_PROPERTY + "=" + run,
                "-cp", cp, "io.directmap.cli.Dmap", "pin", file.toString(), "--range", "0:4M")
                .redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        return pb.start();
    }

    private static String jar(Class<?> c) throws Exception {
        return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }

    /** The child's output, line by line, read on a thread of its own so the child never blocks on a full pipe. */
    private static BlockingQueue<String> drain(java.lang.Process child) {
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        Thread.ofPlatform().daemon().start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
                for (String l; (l = r.readLine()) != null; ) lines.add(l);
            } catch (IOException e) {
                lines.add("(reading the child's output failed: " + e + ")");
            }
        });
        return lines;
    }

    /** The first line that starts with prefix, within 60 s; fails with everything the child said otherwise. */
    private static String awaitLine(BlockingQueue<String> lines, String prefix, java.lang.Process child) throws InterruptedException {
        List<String> said = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            String l = lines.poll(100, TimeUnit.MILLISECONDS);
            if (l == null) {
                if (!child.isAlive() && lines.isEmpty()) break;
                continue;
            }
            if (l.startsWith(prefix)) return l;
            said.add(l);
        }
        return fail("dmap pin did not say '" + prefix + "...' (alive: " + child.isAlive() + "); it said:\n" + String.join("\n", said));
    }
}
