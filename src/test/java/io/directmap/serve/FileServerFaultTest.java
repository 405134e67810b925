package io.directmap.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Profile;
import io.directmap.device.SoftwareDevice;
import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import io.directmap.fs.FsStack;
import io.directmap.fs.Policy;
import io.directmap.pci.Topology;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What a failure below the server leaves behind: NIC memory that cannot be allocated
 * (device_alloc_fail) and a block device that fails every read (read_eio). Each request that hits
 * one is answered with the reason (503, 500) before any byte of the body, the connection and the
 * server go on, and no NIC memory is left allocated once the connections close.
 */
class FileServerFaultTest {
    static final long MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @Test
    void noNicMemoryOrAFailingDeviceGetsAnAnswerAndLeavesNothingBehind() throws Exception {
        Path www = EXT4.file("www");
        Files.createDirectories(www);
        Path cold = www.resolve("cold.bin");
        Workloads.write(cold, 0, 3 * MiB, 4);
        Workloads.syncAndEvict(cold);
        byte[] expected = Files.readAllBytes(cold);
        Workloads.syncAndEvict(cold);
        try (FsStack stack = FsStack.open(Topology.defaults(), new Policy(Policy.CachedPages.REFUSE).withRangeEvents(false));
             SoftwareDevice nic = SoftwareDevice.create("nic0", Profile.NIC, 64 * MiB, stack.topology())) {
            long free = nic.memoryFree();
            try (FileServer server = FileServer.start(ServeOptions.defaults(www).listen(InetAddress.getLoopbackAddress(), 0)
                    .limits(256 << 10, 8, Duration.ofSeconds(1), Duration.ofSeconds(10), Duration.ofSeconds(60)), stack.space(), nic, null);
                 RawHttp http = new RawHttp(server.port())) {
                try (var f = Faults.enable(FaultPoint.DEVICE_ALLOC_FAIL)) {
                    RawHttp.Response r = http.request("GET", "/cold.bin");
                    assertEquals(503, r.status(), new String(r.body(), StandardCharsets.UTF_8));
                    assertTrue(new String(r.body(), StandardCharsets.UTF_8).contains("no NIC memory"));
                    assertTrue(f.fired() >= 1);
                }
                assertEquals(free, nic.memoryFree(), "the allocation that failed left nothing allocated");
                try (var f = Faults.enable(FaultPoint.READ_EIO)) {
                    RawHttp.Response r = http.request("GET", "/cold.bin");
                    assertEquals(500, r.status(), new String(r.body(), StandardCharsets.UTF_8));
                    assertTrue(new String(r.body(), StandardCharsets.UTF_8).contains("EIO"), new String(r.body(), StandardCharsets.UTF_8));
                    assertTrue(f.fired() >= 1);
                }
                RawHttp.Response ok = http.request("GET", "/cold.bin");
                assertEquals(200, ok.status(), "the same connection serves once the faults are off");
                assertArrayEquals(expected, ok.body());
            }
            assertEquals(free, nic.memoryFree(), "every connection's NIC memory was given back");
        }
    }
}
