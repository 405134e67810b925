package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.SoftwareDevice;
import io.directmap.dmabuf.Attachment;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.MapRequest;
import io.directmap.pci.Topology;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What a pin cannot hold: losetup -d on the loop device under the file system (the kernel does not
 * ask). The buffer is revoked: its dynamic importer is told, and every later map fails with the cause.
 */
class PinDetachTest {
    static final long MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = ScratchFs.withoutAutoclear(ScratchFilesystem.Type.EXT4);

    @Test
    void detachingTheLoopDeviceRevokesThePin() throws Exception {
        Path file = EXT4.file("pinned-detach.bin");
        Workloads.write(file, 0, 2 * MiB, 8);
        Workloads.syncAndEvict(file);
        List<Invalidation> told = Collections.synchronizedList(new ArrayList<>());
        try (FsStack mm = FsStack.open(Topology.defaults(), Policy.defaults());
             SoftwareDevice gpu0 = SoftwareDevice.create("gpu0", mm.topology());
             SoftwareDevice gpu1 = SoftwareDevice.create("gpu1", mm.topology());
             OpenFile f = OpenFile.open(file)) {
            MapRequest r = new MapRequest(gpu0.endpoint(), 0, 2 * MiB, EnumSet.of(MapFlag.PIN), MapMode.ALL_OR_NOTHING);
            PinOutcome.Pinned p = assertInstanceOf(PinOutcome.Pinned.class, mm.fs().pin(f, r, mm.changeWatch()));
            try (Attachment pinned = p.buf().attach(gpu0.endpoint());
                 Attachment dyn = p.buf().attachDynamic(gpu1.endpoint(), (a, why) -> told.add(why))) {
                p.buf().release();
                pinned.map();
                dyn.map();

                Commands.run("losetup", "-d", EXT4.filesystem().loopDevice());

                long deadline = System.nanoTime() + 5_000_000_000L;
                while (told.isEmpty() && System.nanoTime() < deadline) Thread.sleep(5);
                assertEquals(1, told.size(), "the dynamic importer was told once");
                assertEquals(Invalidation.Cause.BLOCK_DEVICE, told.getFirst().cause());
                assertTrue(told.getFirst().detail().contains("detach"), told.toString());
                IOException e = assertThrows(IOException.class, pinned::map);
                assertTrue(e.getMessage().contains("revoked") && e.getMessage().contains("detach"), e.getMessage());
                // The buffer lives (two attachments) but holds nothing: writers are let go at once.
                Commands.run(List.of("dd", "if=/dev/zero", "of=" + file, "bs=4096", "count=1", "conv=notrunc", "status=none"),
                        null, java.time.Duration.ofSeconds(30));
            }
            assertEquals(List.of(), mm.fs().pins(), "released with its last reference");
            for (var dev : mm.fs().blocks().known()) assertEquals(0, dev.apertureUsed(), dev + " aperture given back");
        }
    }
}
