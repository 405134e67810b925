package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * DMAP_FAULTS as a user sets it: `dmap map` in a child process with a fault point on fails with
 * one line that names the device, the errno and what failed, never a stack trace; a misspelt
 * point is refused with the list of points before anything runs.
 */
class FaultEnvironmentTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    static Path file;

    @BeforeAll
    static void coldFile() throws IOException {
        file = EXT4.file("faults-env.bin");
        Workloads.write(file, 0, 8 << 20, 3);
        Workloads.syncAndEvict(file);
    }

    record Run(int code, String out, String err) {}

    private static Run dmapWith(String faults, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), Dmap.class.getName()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("DMAP_FAULTS", faults);
        pb.environment().remove("DMAP_DEBUG");
        Path out = java.nio.file.Files.createTempFile("dmap-out", ".txt"), err = java.nio.file.Files.createTempFile("dmap-err", ".txt");
        try {
            Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor();
                throw new AssertionError("dmap " + String.join(" ", args) + " with DMAP_FAULTS=" + faults + " did not end in 60 s");
            }
            return new Run(p.exitValue(), java.nio.file.Files.readString(out, StandardCharsets.UTF_8),
                    java.nio.file.Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            java.nio.file.Files.deleteIfExists(out);
            java.nio.file.Files.deleteIfExists(err);
        }
    }

    private static void assertNoStackTrace(Run r) {
        assertFalse(r.err().contains("\tat ") || r.err().contains("Exception in thread"), "no stack trace: " + r.err());
    }

    @Test
    void deviceMemoryThatCannotBeAllocatedIsOneClearLine() throws Exception {
        Run r = dmapWith("device_alloc_fail", "map", file.toString());
        assertEquals(Dmap.FAILED, r.code(), r.err() + r.out());
        assertTrue(r.err().contains("fault points are on (DMAP_FAULTS=device_alloc_fail)"), "says faults are on: " + r.err());
        assertTrue(r.err().contains("ENOMEM") && r.err().contains("gpu0"), "names the errno and the device: " + r.err());
        assertNoStackTrace(r);
    }

    @Test
    void aDeviceThatAlwaysFailsWithEioIsReportedWithItsErrno() throws Exception {
        Run r = dmapWith("read_eio", "map", file.toString());
        assertEquals(Dmap.FAILED, r.code(), r.err() + r.out());
        assertTrue(r.err().contains("EIO") && r.err().contains("/dev/loop"), "names the errno and the device: " + r.err());
        assertNoStackTrace(r);
    }

    @Test
    void aMisspeltPointIsRefusedWithTheListBeforeAnythingRuns() throws Exception {
        Run r = dmapWith("read_eoi:0.5", "map", file.toString());
        assertEquals(Dmap.INVALID_INPUT, r.code(), r.err() + r.out());
        assertTrue(r.err().contains("'read_eoi'") && r.err().contains("read_eio") && r.err().contains("skip_invalidate"),
                "names the bad entry and the points there are: " + r.err());
        assertEquals("", r.out());
        assertNoStackTrace(r);
    }
}
