package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.block.BlockDevice;
import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.dmabuf.Attachment;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.testing.Bytes;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * An aperture that reclaims its least recently used windows when full passes a pin's windows over:
 * a pin holds until its last release, and the reclaim is a policy (unlike a detach, which revokes).
 */
class PinReclaimTest {
    static final long KiB = 1 << 10, MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @TempDir Path dir;

    @Test
    void reclaimPassesAPinsWindowsOverAndTakesBackAnOrdinaryMapping() throws Exception {
        ScratchFs.requireRootFixtures(ScratchFilesystem.Type.EXT4);
        Path file = EXT4.file("pinned-reclaim.bin");
        Workloads.write(file, 0, 4 * MiB, 5);
        Workloads.syncAndEvict(file);
        String loop = Path.of(EXT4.filesystem().loopDevice()).getFileName().toString();
        Path topo = Files.writeString(dir.resolve("topology"), "bar " + loop + " 1M reclaim\n");
        try (FsStack mm = FsStack.open(Topology.load(topo), Policy.defaults());
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             OpenFile f = OpenFile.open(file);
             Vma vma = mm.mmap(file)) {
            MapRequest r = new MapRequest(gpu.endpoint(), 0, 512 * KiB, EnumSet.of(MapFlag.PIN), MapMode.ALL_OR_NOTHING);
            PinOutcome.Pinned p = assertInstanceOf(PinOutcome.Pinned.class, mm.fs().pin(f, r, mm.changeWatch()));
            DeviceMapping[] m = new DeviceMapping[2];
            try {
                // The pin's window is the least recently used; the next map fills the aperture.
                m[0] = vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), MiB, MiB + 512 * KiB));
                assertEquals(512 * KiB, m[0].directBytes(), m[0].segments().toString());
                m[1] = vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), 2 * MiB, 2 * MiB + 512 * KiB));
                assertEquals(512 * KiB, m[1].directBytes(), "the ordinary mapping's window was taken back: " + m[1].segments());
                assertFalse(m[0].isLive(), "the ordinary mapping was reclaimed");
                BlockDevice dev = mm.blocks().known().stream().filter(d -> d.name().equals(loop)).findFirst().orElseThrow();
                assertEquals(1, dev.apertureReclaims());
                assertTrue(p.buf().pinned());
                try (Attachment a = p.buf().attach(gpu.endpoint());
                     DeviceMemory.Buffer mem = gpu.allocate("pinned", 512 * KiB)) {
                    gpu.readDirect(a.map(), 0, mem.segment());   // not revoked: the map gives the pin's segments
                    Bytes.assertDeviceHoldsFile(file, 0, mem.segment());
                }
            } finally {
                for (DeviceMapping x : m) if (x != null) vma.ops().deviceUnmap(vma, gpu.endpoint(), x);
                p.buf().release();
            }
            assertEquals(java.util.List.of(), mm.fs().pins());
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
