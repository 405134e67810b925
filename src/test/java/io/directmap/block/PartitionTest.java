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
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

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
}
