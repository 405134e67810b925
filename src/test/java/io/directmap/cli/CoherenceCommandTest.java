package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.sys.Commands;
import io.directmap.sys.ScratchFilesystem;
import io.directmap.testing.ScratchFs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** dmap watch and dmap torture as a user runs them, on a real loop-mounted ext4. */
class CoherenceCommandTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @Test
    void watchPrintsTheWriteThatWaitedForTheDeviceAndWhoDidIt() throws Exception {
        Path f = EXT4.file("watched.bin");
        Workloads.write(f, 0, 8 << 20, 5);
        Workloads.syncAndEvict(f);
        AtomicReference<DmapCommandTest.Result> result = new AtomicReference<>();
        Thread watch = Thread.ofPlatform().start(() -> result.set(DmapCommandTest.dmap("watch", f.toString(), "--count", "1", "--for", "20")));
        try {
            // Wait until the mapping is live (the lease is held), then write from another process.
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (!Files.readString(Path.of("/proc/locks")).contains(":" + Files.getAttribute(f, "unix:ino") + " ")
                    && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            Commands.run("dd", "if=/dev/zero", "of=" + f, "bs=4096", "count=1", "conv=notrunc", "status=none");
            watch.join(30_000);
        } finally {
            Files.deleteIfExists(f);
        }
        DmapCommandTest.Result r = result.get();
        assertEquals(Dmap.OK, r.code(), r.err());
        assertTrue(r.out().contains("8 MiB direct"), "the cold file was mapped directly: " + r.out());
        assertTrue(r.out().matches("(?s).*write_open +\\[0, EOF\\) +held back +1 .*pid \\d+ \\((/usr)?/bin/dd .*"),
                "one line says a write waited for the device, and names dd: " + r.out());
        assertTrue(r.out().contains("re-faulted:"), r.out());
    }

    @Test
    void tortureReportsNoStaleOrTornBlocks() {
        DmapCommandTest.Result r = DmapCommandTest.dmap("torture", EXT4.mountPoint().toString(), "--reads", "300",
                "--throughput-size", "32M", "--seconds", "0.5");
        assertEquals(Dmap.OK, r.code(), r.out() + r.err());
        assertTrue(r.out().contains(": 0 stale, 0 torn"), r.out());
        assertTrue(r.out().matches("(?s).*alone: +\\d+\\.\\d+ GiB/s.*while dd writes 1% of the file per second: +\\d+\\.\\d+ GiB/s.*"), r.out());
    }
}
