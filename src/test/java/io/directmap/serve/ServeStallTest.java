package io.directmap.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Profile;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.Policy;
import io.directmap.pci.Topology;
import io.directmap.testing.ChildWriter;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A client that asks for a large file and reads nothing holds a writer of that file back for at
 * most the hold bound: with NIC memory (the writer waits only for a window being read, never for
 * the socket) and with sendfile (the writer waits for the window in the socket, then the response
 * is reset, so pages handed to the socket are never sent after the change).
 */
class ServeStallTest {
    static final long MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @ParameterizedTest
    @EnumSource(value = ServeOptions.Sendfile.class, names = {"ALWAYS", "NEVER"})
    void aStalledClientHoldsAWriterBackAtMostTheHold(ServeOptions.Sendfile sendfile) throws Exception {
        Path www = EXT4.file("www-" + sendfile);
        Files.createDirectories(www);
        Path big = www.resolve("big.bin");
        Workloads.write(big, 0, 32 * MiB, 9);
        Files.readAllBytes(big);   // hot: with sendfile ALWAYS, the windows after the first go with sendfile
        Duration hold = Duration.ofMillis(500);
        try (FsStack stack = FsStack.open(Topology.defaults(), new Policy(Policy.CachedPages.REFUSE).withRangeEvents(false));
             SoftwareDevice nic = SoftwareDevice.create("nic0", Profile.NIC, 64 * MiB, stack.topology());
             FileServer server = FileServer.start(ServeOptions.defaults(www).listen(InetAddress.getLoopbackAddress(), 0).sendfile(sendfile)
                     .limits(1 << 20, 8, hold, Duration.ofSeconds(30), Duration.ofSeconds(60)), stack.space(), nic, null);
             RawHttp stalled = new RawHttp(server.port(), 16 << 10)) {
            stalled.send("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            // Wait until the server has begun: the file is mapped (its lease held) once a window was read.
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (server.meter().directBytes.sum() + server.meter().copiedBytes.sum() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertTrue(System.nanoTime() < deadline, "the server never read a window");
            double waited;
            try (ChildWriter w = ChildWriter.start(big)) {
                waited = w.await(30);
            }
            assertTrue(waited < hold.toMillis() / 1000.0 + 3, "the writer was held back " + waited + " s by a client that reads nothing (hold "
                    + hold.toMillis() + " ms)");
            if (sendfile == ServeOptions.Sendfile.ALWAYS) {
                assertTrue(server.cutResponses() >= 1, "the response whose sendfile window held the change back was reset");
            }
            RawHttp.Response r = stalled.read(false);
            assertEquals(200, r.status());
            assertFalse(r.complete(), "the stalled response was cut off, not completed with bytes of two versions");
            assertTrue(r.body().length < 32 * MiB);
        }
    }
}
