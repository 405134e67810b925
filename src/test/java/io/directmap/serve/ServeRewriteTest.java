package io.directmap.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Profile;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.PathLearner;
import io.directmap.fs.Policy;
import io.directmap.pci.Topology;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The coherence test: clients download a file over and over, whole and by ranges, while
 * child processes (dd, buffered and O_DIRECT) rewrite it, one version after another. Every 8-byte
 * word of a version holds (version, block number), so a body is checked word by word: it must hold
 * one version only, with each block at its place, whether the response was complete or cut off
 * (a cut response is counted apart); and every complete response's ETag must name the version its
 * bytes are: one ETag, one version.
 */
class ServeRewriteTest {
    static final int SIZE = 2 << 20, BLOCK = 4096, VERSIONS = 24;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    static byte[] version(int v) {
        ByteBuffer b = ByteBuffer.allocate(SIZE);
        for (int o = 0; o < SIZE; o += 8) b.putLong(o, ((long) v << 32) | (o / BLOCK));
        return b.array();
    }

    /** The version every word of body (file offsets [start, ...)) holds, or -1 for none; fails on two versions or a misplaced block. */
    static int versionOf(byte[] body, long start, List<String> problems, String what) {
        int found = -1;
        ByteBuffer b = ByteBuffer.wrap(body);
        for (long o = (start + 7) / 8 * 8; o + 8 <= start + body.length; o += 8) {
            long word = b.getLong((int) (o - start));
            int v = (int) (word >>> 32), block = (int) word;
            if (block != o / BLOCK) {
                problems.add(what + ": file offset " + o + " holds block " + block + "'s word");
                return -2;
            }
            if (found == -1) found = v;
            else if (v != found) {
                problems.add(what + ": versions " + found + " and " + v + " in one body (at file offset " + o + ")");
                return -2;
            }
        }
        return found;
    }

    @Test
    void noResponseMixesTwoVersionsWhileChildProcessesRewriteTheFile() throws Exception {
        Path www = EXT4.file("www"), versions = EXT4.file("versions");
        Files.createDirectories(www);
        Files.createDirectories(versions);
        for (int v = 0; v <= VERSIONS; v++) Files.write(versions.resolve("v" + v), version(v));
        Path target = www.resolve("v.bin");
        Files.write(target, version(0));

        List<String> problems = new CopyOnWriteArrayList<>();
        Map<String, Integer> etags = new ConcurrentHashMap<>();
        AtomicInteger complete = new AtomicInteger(), cut = new AtomicInteger(), busy = new AtomicInteger(), written = new AtomicInteger();
        List<Double> writerSeconds = new CopyOnWriteArrayList<>();
        AtomicBoolean stop = new AtomicBoolean();

        try (FsStack stack = FsStack.open(Topology.defaults(), new Policy(Policy.CachedPages.REFUSE, new PathLearner(1000)).withRangeEvents(false));
             SoftwareDevice nic = SoftwareDevice.create("nic0", Profile.NIC, 128L << 20, stack.topology());
             FileServer server = FileServer.start(ServeOptions.defaults(www).listen(InetAddress.getLoopbackAddress(), 0)
                     .limits(64 << 10, 64, Duration.ofSeconds(2), Duration.ofSeconds(10), Duration.ofSeconds(60)), stack.space(), nic, null)) {
            List<Thread> clients = new ArrayList<>();
            for (int c = 0; c < 3; c++) {
                clients.add(Thread.ofPlatform().name("client-" + c).start(() -> {
                    RawHttp http = null;
                    try {
                        while (!stop.get()) {
                            if (http == null) http = new RawHttp(server.port());
                            ThreadLocalRandom rnd = ThreadLocalRandom.current();
                            long start = 0, end = SIZE;
                            String[] headers = {};
                            if (rnd.nextBoolean()) {
                                start = rnd.nextLong(SIZE - 1);
                                end = rnd.nextLong(start + 1, SIZE + 1);
                                headers = new String[] {"Range: bytes=" + start + "-" + (end - 1)};
                            }
                            RawHttp.Response r = http.request("GET", "/v.bin", headers);
                            if (r.status() == 503) {
                                busy.incrementAndGet();
                                continue;
                            }
                            if (r.status() != 200 && r.status() != 206) {
                                problems.add("status " + r.status());
                                break;
                            }
                            String what = (r.complete() ? "complete" : "cut") + " response [" + start + ", " + end + ") " + r.header("etag");
                            int v = versionOf(r.body(), start, problems, what);
                            if (r.complete()) {
                                complete.incrementAndGet();
                                if (r.body().length != end - start) problems.add(what + ": " + r.body().length + " bytes");
                                Integer before = etags.putIfAbsent(r.header("etag"), v);
                                if (v >= 0 && before != null && before != v) {
                                    problems.add(what + ": ETag " + r.header("etag") + " came with version " + before + " and now " + v);
                                }
                            } else {
                                cut.incrementAndGet();
                                http.close();
                                http = null;
                            }
                        }
                    } catch (IOException e) {
                        problems.add(Thread.currentThread().getName() + ": " + e);
                    } finally {
                        try {
                            if (http != null) http.close();
                        } catch (IOException e) {
                            problems.add(e.toString());
                        }
                    }
                }));
            }
            // One writer at a time (two dd's writing at once could leave blocks of both at rest, which
            // a server would rightly send); odd versions with O_DIRECT, so the page cache is dropped
            // and the next windows go direct.
            for (int v = 1; v <= VERSIONS && problems.isEmpty(); v++) {
                List<String> dd = new ArrayList<>(List.of("dd", "if=" + versions.resolve("v" + v), "of=" + target, "bs=" + SIZE,
                        "count=1", "conv=notrunc", "status=none"));
                if (v % 2 == 1) dd.add("oflag=direct");
                long t0 = System.nanoTime();
                Process p = new ProcessBuilder(dd).redirectErrorStream(true).start();
                if (!p.waitFor(30, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    problems.add("dd of version " + v + " was held back for 30 s");
                    break;
                }
                String out = new String(p.getInputStream().readAllBytes());
                if (p.exitValue() != 0) problems.add("dd of version " + v + ": " + out);
                writerSeconds.add((System.nanoTime() - t0) / 1e9);
                written.incrementAndGet();
                // Let the clients see this version before the next one (a bounded wait for a condition, not a sleep).
                long until = System.nanoTime() + 2_000_000_000L;
                int v0 = v;
                while (System.nanoTime() < until && !etags.containsValue(v0) && problems.isEmpty()) Thread.sleep(2);
            }
            stop.set(true);
            for (Thread t : clients) t.join(30_000);
            assertEquals(List.of(), problems);
            try (RawHttp last = new RawHttp(server.port())) {
                RawHttp.Response r = last.request("GET", "/v.bin");
                assertEquals(VERSIONS, versionOf(r.body(), 0, problems, "the last GET"), "the last version is served once all writers are done");
            }
        }
        assertEquals(VERSIONS, written.get());
        long versionsSeen = etags.values().stream().filter(v -> v >= 0).distinct().count();
        assertTrue(complete.get() >= VERSIONS / 2 && versionsSeen >= VERSIONS / 2, complete + " complete responses of " + versionsSeen
                + " versions (" + cut + " cut off, " + busy + " busy): the clients were served, not only cut off");
        double slowest = writerSeconds.stream().mapToDouble(Double::doubleValue).max().orElse(0);
        assertTrue(slowest < 10, "a writer was held back " + slowest + " s; the bound is the hold (2 s) per response it waited for");
        System.out.printf("rewrite: %d versions, %d complete responses, %d cut off, %d busy (503), %d ETags; slowest writer %.3f s%n",
                VERSIONS, complete.get(), cut.get(), busy.get(), etags.size(), slowest);
    }
}
