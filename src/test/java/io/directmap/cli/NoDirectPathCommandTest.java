package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.block.BlockReason;
import io.directmap.mm.Refuser;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** A file with no direct path, mapped by dmap: every byte still arrives, by fallback, with the reason. */
class NoDirectPathCommandTest {
    static final long MiB = 1 << 20;

    /**
     * A file whose block devices refuse to open, even to root: none of its bytes go direct, all
     * arrive through the page cache, and each range says why. The test builds that machine itself
     * (every device node under /dev nodev, in a mount namespace of its own; see NodevDmap), so it
     * holds wherever the loop-mount tests run, whatever this machine's root disk allows.
     */
    @Test
    void fileWhoseBlockDevicesCannotBeOpenedFallsBackWithTheReason() throws Exception {
        ScratchFs.requireRootFixtures(ScratchFilesystem.Type.EXT4);
        try (ScratchFilesystem fs = ScratchFilesystem.create(ScratchFilesystem.Type.EXT4, 64 * MiB, false, List.of())) {
            Path file = fs.mountPoint().resolve("unreachable.bin");
            Workloads.write(file, 0, 3 * MiB, 60);
            Workloads.syncAndEvict(file);
            String out = NodevDmap.run("map", file.toString(), "--json");
            assertEquals(0, number(out, "direct_bytes"), out);
            assertEquals(3 * MiB, number(out, "fallback_bytes"), out);
            assertTrue(out.contains("\"checksum_ok\": true"), "every byte arrived: " + out);
            assertFalse(out.contains("\"path\": \"direct\""), out);
            assertTrue(out.contains("\"refused_by\": \"" + Refuser.BLOCK_DEVICE.label() + "\""), out);
            assertTrue(out.contains("\"reason\": \"" + BlockReason.UNREADABLE.code() + "\""), out);
            assertTrue(out.contains(fs.loopDevice() + ": open O_DIRECT failed with EACCES"), "names the device and the errno: " + out);
            Files.delete(file);
        }
        assertFalse(Commands.run("findmnt", "-n", "-o", "OPTIONS", "/dev").contains("nodev"), "this machine's /dev is as it was");
    }

    private static long number(String json, String field) {
        Matcher m = Pattern.compile("\"" + field + "\": (-?\\d+)").matcher(json);
        assertTrue(m.find(), field + " in " + json);
        return Long.parseLong(m.group(1));
    }
}
