package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.directmap.device.DeviceAccess;
import io.directmap.device.SoftwareDevice;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.testing.Bytes;
import io.directmap.tools.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Files whose blocks cannot be reached: every byte still arrives, by fallback, with the reason. */
class NoDirectPathTest {
    static final long MiB = 1 << 20;

    @Test
    void fileOnTmpfsHasNoBlockMapping() throws Exception {
        Path shm = Path.of("/dev/shm");
        Assumptions.assumeTrue(Files.isDirectory(shm) && Files.isWritable(shm), "/dev/shm is not a writable tmpfs here");
        Path file = Files.createTempFile(shm, "dmap-", ".bin");
        try {
            Workloads.write(file, 0, 2 * MiB + 10, 61);
            try (FsStack mm = FsStack.open(); SoftwareDevice gpu = SoftwareDevice.create("nic0", mm.topology());
                 Vma vma = mm.mmap(file); DeviceAccess a = gpu.access(vma, 0, vma.length())) {
                Bytes.assertDeviceHoldsFile(file, 0, a.memory());
                assertEquals("tmpfs", OpenFile.of(vma).fsType());
                assertEquals(1, a.segments().size());
                assertEquals(FsReason.NO_BLOCK_MAPPING, ((Segment.Fallback) a.segments().getFirst()).refusal().reason());
            }
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
