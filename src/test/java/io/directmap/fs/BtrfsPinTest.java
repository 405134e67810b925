package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.SoftwareDevice;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.MapRequest;
import io.directmap.pci.Topology;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** btrfs moves blocks without opening the file (balance, scrub repair): a pin is refused with that reason, and nothing is held. */
class BtrfsPinTest {
    @RegisterExtension
    static final ScratchFs BTRFS = new ScratchFs(ScratchFilesystem.Type.BTRFS);

    @Test
    void aPinOnBtrfsIsRefusedWithItsReason() throws Exception {
        Path file = BTRFS.file("pinned.bin");
        Workloads.write(file, 0, 1 << 20, 7);
        Workloads.syncAndEvict(file);
        try (FsStack mm = FsStack.open(Topology.defaults(), Policy.defaults());
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             OpenFile f = OpenFile.open(file)) {
            MapRequest r = new MapRequest(gpu.endpoint(), 0, 1 << 20, EnumSet.of(MapFlag.PIN), MapMode.ALL_OR_NOTHING);
            PinOutcome.Refused no = assertInstanceOf(PinOutcome.Refused.class, mm.fs().pin(f, r, mm.changeWatch()));
            assertEquals(FsReason.PIN_RELOCATABLE, no.refusal().reason());
            assertEquals("pin_relocatable", no.refusal().reason().code());
            assertTrue(no.refusal().detail().contains("balance"), no.refusal().detail());
            assertEquals(List.of(), mm.fs().pins());
        }
        Commands.run("dd", "if=/dev/zero", "of=" + file, "bs=4096", "count=1", "conv=notrunc", "status=none");
    }
}
