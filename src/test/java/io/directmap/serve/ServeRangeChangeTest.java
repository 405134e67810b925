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
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Range events tell the NIC only of changes to windows it has mapped. A response for a file of
 * several 8 MiB windows maps them one after another: while it sends the first, a child process
 * changes a later window that nothing maps yet (4 KiB written with dd at a random offset, a
 * truncate, a punch hole). No mapping overlaps the change, so no invalidation reaches the response;
 * it must still never deliver the old bytes of the first window with the new bytes of the later
 * one: it is cut off (short of its Content-Length), or it holds one version, checked block by block.
 */
class ServeRangeChangeTest {
    static final int SIZE = 16 << 20, BLOCK = 4096, WINDOW = 8 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    /** Blocks [first, first + count) of version v: every 8-byte word holds (v, block). */
    static byte[] blocks(int v, int first, int count) {
        ByteBuffer b = ByteBuffer.allocate(count * BLOCK);
        for (int o = 0; o < count * BLOCK; o += 8) b.putLong(o, ((long) v << 32) | (first + o / BLOCK));
        return b.array();
    }

    static void run(List<String> problems, String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            problems.add(String.join(" ", command) + " was held back for 30 s");
            return;
        }
        String out = new String(p.getInputStream().readAllBytes());
        if (p.exitValue() != 0) problems.add(String.join(" ", command) + ": " + out);
    }

    @Test
    void aChangeToAWindowNotYetMappedCutsTheResponseInFlight() throws Exception {
        Path www = EXT4.file("www"), parts = EXT4.file("parts");
        Files.createDirectories(www);
        Files.createDirectories(parts);
        Path target = www.resolve("f.bin");
        Random rnd = new Random(12);
        List<String> problems = new ArrayList<>();
        List<String> changes = new ArrayList<>();
        int cutOff = 0;
        try (FsStack stack = FsStack.open(Topology.defaults(), new Policy(Policy.CachedPages.REFUSE, new PathLearner(1000), true));
             SoftwareDevice nic = SoftwareDevice.create("nic0", Profile.NIC, 64L << 20, stack.topology());
             FileServer server = FileServer.start(ServeOptions.defaults(www).listen(InetAddress.getLoopbackAddress(), 0)
                     .limits(64 << 10, 8, Duration.ofSeconds(2), Duration.ofSeconds(10), Duration.ofSeconds(60)), stack.space(), nic, null)) {
            int rounds = 8;
            for (int round = 0; round < rounds && problems.isEmpty(); round++) {
                int base = 2 * round + 1;
                Path whole = parts.resolve("v" + base);
                Files.write(whole, blocks(base, 0, SIZE / BLOCK));
                run(problems, "dd", "if=" + whole, "of=" + target, "bs=1M", "status=none");
                // A later window, beyond what the stalled response can have read (socket buffers hold a few MiB).
                int block = WINDOW / BLOCK + rnd.nextInt((SIZE - WINDOW) / BLOCK - 1);
                String change;
                try (RawHttp http = new RawHttp(server.port(), 64 << 10)) {
                    http.send("GET /f.bin HTTP/1.1\r\nHost: localhost\r\n\r\n");
                    // The headers come after the first window was read (the lease or the watch then holds it).
                    long until = System.nanoTime() + 10_000_000_000L;
                    while (!http.arrived() && System.nanoTime() < until) Thread.sleep(1);
                    if (round == rounds - 2) {
                        change = "truncate to " + (long) block * BLOCK;
                        run(problems, "truncate", "-s", String.valueOf((long) block * BLOCK), target.toString());
                    } else if (round == rounds - 1) {
                        change = "punch hole at " + (long) block * BLOCK;
                        run(problems, "fallocate", "-p", "-o", String.valueOf((long) block * BLOCK), "-l", String.valueOf(BLOCK), target.toString());
                    } else {
                        change = "4 KiB of version " + (base + 1) + " written at " + (long) block * BLOCK;
                        Path part = parts.resolve("b" + round);
                        Files.write(part, blocks(base + 1, block, 1));
                        run(problems, "dd", "if=" + part, "of=" + target, "bs=" + BLOCK, "seek=" + block, "count=1", "conv=notrunc", "status=none");
                    }
                    changes.add(change);
                    RawHttp.Response r = http.read(false);
                    String what = "round " + round + " (" + change + "): " + (r.complete() ? "complete" : "cut") + " response of "
                            + r.body().length + " bytes";
                    if (r.status() != 200) problems.add(what + ": status " + r.status());
                    int v = ServeRewriteTest.versionOf(r.body(), 0, problems, what);
                    if (r.complete() && v != base + 1 && v >= 0 && r.body().length == SIZE) {
                        // One version throughout: only the old one if the change came after every byte was read.
                        if (v != base) problems.add(what + ": version " + v);
                    }
                    if (!r.complete()) cutOff++;
                }
            }
        }
        assertEquals(List.of(), problems, "changes: " + changes);
        assertTrue(cutOff > 0, "no response was cut off; every change came after the response had read the whole file?");
        System.out.printf("range change: %d responses, %d cut off%n", changes.size(), cutOff);
    }
}
