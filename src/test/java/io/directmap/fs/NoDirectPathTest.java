package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.block.BlockReason;
import io.directmap.block.Layer;
import io.directmap.cli.Workloads;
import io.directmap.device.DeviceAccess;
import io.directmap.device.SoftwareDevice;
import io.directmap.mm.AddressSpace;
import io.directmap.mm.Vma;
import io.directmap.sys.Process;
import io.directmap.testing.Bytes;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Files whose blocks cannot be reached: every byte still arrives, by fallback, with the reason. */
class NoDirectPathTest {
    static final long MiB = 1 << 20;

    @TempDir Path dir;

    @Test
    void fileOnTheRootFileSystemFallsBackBecauseItsDiskCannotBeOpened() throws Exception {
        // Under target/: the root file system of this machine, whose disk even root cannot open.
        Path file = Files.createTempFile(Path.of("target").toAbsolutePath(), "rootfs-", ".bin");
        try {
            Workloads.write(file, 0, 3 * MiB, 60);
            Workloads.syncAndEvict(file);
            try (AddressSpace mm = AddressSpace.create(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
                 Vma vma = mm.mmap(file); DeviceAccess a = gpu.access(vma, 0, 3 * MiB)) {
                Bytes.assertDeviceHoldsFile(file, 0, a.memory());
                Assumptions.assumeTrue(vma.file().fsType().equals("ext4") || vma.file().fsType().equals("xfs"),
                        "the root file system here is " + vma.file().fsType());
                assertEquals(0, a.directBytes());
                for (Segment s : a.segments()) {
                    var f = (Segment.Fallback) s;
                    assertEquals(Layer.BLOCK_DEVICE, f.refusal().reason().layer());
                    assertEquals(BlockReason.UNREADABLE, f.refusal().reason());
                    assertTrue(f.refusal().detail().contains(Process.isRoot() ? "EPERM" : "EACCES"), f.refusal().detail());
                }
            }
        } finally {
            Files.deleteIfExists(file);
        }
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
