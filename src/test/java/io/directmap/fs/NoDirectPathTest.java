package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.block.BlockReason;
import io.directmap.block.Layer;
import io.directmap.cli.Workloads;
import io.directmap.device.DeviceAccess;
import io.directmap.device.SoftwareDevice;
import io.directmap.mm.AddressSpace;
import io.directmap.mm.Vma;
import io.directmap.sys.Commands;
import io.directmap.sys.ScratchFilesystem;
import io.directmap.testing.Bytes;
import io.directmap.testing.NodevDmap;
import io.directmap.testing.ScratchFs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Files whose blocks cannot be reached: every byte still arrives, by fallback, with the reason. */
class NoDirectPathTest {
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
            assertTrue(out.contains("\"refused_by\": \"" + Layer.BLOCK_DEVICE.label() + "\""), out);
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

    @Test
    void fileOnTmpfsHasNoBlockMapping() throws Exception {
        Path shm = Path.of("/dev/shm");
        Assumptions.assumeTrue(Files.isDirectory(shm) && Files.isWritable(shm), "/dev/shm is not a writable tmpfs here");
        Path file = Files.createTempFile(shm, "dmap-", ".bin");
        try {
            Workloads.write(file, 0, 2 * MiB + 10, 61);
            try (AddressSpace mm = AddressSpace.create(); SoftwareDevice gpu = SoftwareDevice.create("nic0", mm.topology());
                 Vma vma = mm.mmap(file); DeviceAccess a = gpu.access(vma, 0, vma.length())) {
                Bytes.assertDeviceHoldsFile(file, 0, a.memory());
                assertEquals("tmpfs", vma.file().fsType());
                assertEquals(1, a.segments().size());
                assertEquals(FsReason.NO_BLOCK_MAPPING, ((Segment.Fallback) a.segments().getFirst()).refusal().reason());
            }
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
