package io.directmap.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.DeviceAccess;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.testing.Bytes;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import io.directmap.fs.Policy;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.MapRequest;
import io.directmap.pci.Topology;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** A partition resolves to its whole disk with the partition's start added, and the bytes still match. */
class PartitionTest {
    @RegisterExtension
    static final ScratchFs PARTITIONED = new ScratchFs(ScratchFilesystem.Type.EXT4, true, List.of());

    @Test
    void partitionIsReadThroughItsWholeDisk() throws Exception {
        Path file = PARTITIONED.file("on-partition.bin");
        Workloads.write(file, 0, 2 << 20, 80);
        Workloads.syncAndEvict(file);
        String disk = Path.of(PARTITIONED.filesystem().loopDevice()).getFileName().toString();
        try (FsStack mm = FsStack.open(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file); DeviceAccess a = gpu.access(vma, 0, 2 << 20)) {
            Bytes.assertDeviceHoldsFile(file, 0, a.memory());
            assertEquals(2 << 20, a.directBytes(), a.segments().toString());
            for (Segment s : a.segments()) {
                var d = (Segment.Direct) s;
                assertEquals(disk, d.peer().name(), "read from the whole disk, not " + PARTITIONED.filesystem().fsDevice());
                assertTrue(d.deviceOffset() >= 2048 * 512, "the partition's 1 MiB start is added: " + d.deviceOffset());
            }
        }
    }

    /**
     * The BAR is the disk's: with 'bar DISK 1M', mapping 4 MiB of a file on its partition gets 1 MiB
     * direct through the disk, and the rest is refused for the disk's full aperture (not granted
     * from the partition's own default one).
     */
    @Test
    void aPartitionSharesItsDisksFullAperture(@TempDir Path dir) throws Exception {
        Path file = PARTITIONED.file("bar-on-partition.bin");
        Workloads.write(file, 0, 4 << 20, 81);
        Workloads.syncAndEvict(file);
        String disk = Path.of(PARTITIONED.filesystem().loopDevice()).getFileName().toString();
        Path rules = Files.writeString(dir.resolve("topology"), "bar " + disk + " 1M\n");
        try (FsStack mm = FsStack.open(Topology.load(rules), Policy.defaults());
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology()); Vma vma = mm.mmap(file)) {
            DeviceMapping m = vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), 0, 4 << 20));
            try {
                assertEquals(1 << 20, m.directBytes(), m.segments().toString());
                for (Segment s : m.segments()) {
                    switch (s) {
                        case Segment.Direct d -> assertEquals(disk, d.peer().name(), s.toString());
                        case Segment.Fallback f -> {
                            assertEquals(BlockReason.APERTURE_EXHAUSTED, f.refusal().reason(), f.toString());
                            assertTrue(f.refusal().detail().contains(disk + "'s aperture of 1048576 bytes"), f.refusal().detail());
                        }
                    }
                }
            } finally {
                vma.ops().deviceUnmap(vma, gpu.endpoint(), m);
            }
            for (BlockDevice d : mm.blocks().known()) assertEquals(0, d.aperture().usedBytes(), d.name() + ": " + d.aperture());
        }
    }
}
