package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.directmap.device.DeviceAccess;
import io.directmap.device.SoftwareDevice;
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

/** With data=journal the current bytes of a block may be in the journal: ext4 refuses the whole file. */
class Ext4DataJournalTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4, false, List.of("data=journal"));

    @Test
    void dataJournalMountRefusesEveryFile() throws Exception {
        Path file = EXT4.file("journaled.bin");
        Workloads.write(file, 0, 1 << 20, 30);
        Workloads.syncAndEvict(file);
        try (FsStack mm = FsStack.open(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file); DeviceAccess a = gpu.access(vma, 0, 1 << 20)) {
            assertEquals(1, a.segments().size());
            var f = (Segment.Fallback) a.segments().getFirst();
            assertEquals(FsReason.JOURNALED_DATA, f.refusal().reason());
            assertEquals("mounted with data=journal", f.refusal().detail());
            Bytes.assertDeviceHoldsFile(file, 0, a.memory());
        }
    }
}
