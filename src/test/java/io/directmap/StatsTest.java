package io.directmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.ExportedMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.mm.AddressSpace;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Vma;
import io.directmap.pci.PciTree;
import io.directmap.pci.Topology;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** DirectMap.stats(): the library's snapshot of what this process's DirectMap holds, before and after. */
class StatsTest {
    static final long MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @Test
    void anExportersApertureAndPeerMappingsShowAndGoWhenFreed() throws Exception {
        Topology t = Topology.parse("bar gpu9 1M reclaim\n", "test topology", PciTree.EMPTY);
        try (DirectMap dm = DirectMap.open(); AddressSpace mm = AddressSpace.create(t);
             SoftwareDevice gpu = SoftwareDevice.create("gpu9", t); SoftwareDevice nic = SoftwareDevice.create("nic9", t)) {
            ExportedMemory e = gpu.export(4 * MiB);
            try (Vma vma = e.mmap(mm)) {
                DeviceMapping a = vma.ops().deviceMap(vma, new MapRequest(nic.endpoint(), 0, 512 << 10));
                DeviceMapping b = vma.ops().deviceMap(vma, new MapRequest(nic.endpoint(), MiB, MiB + (256 << 10)));
                Stats.ExporterStats x = dm.stats().exporters().stream().filter(s -> s.name().equals("gpu9")).findFirst()
                        .orElseThrow(() -> new AssertionError("gpu9 in " + dm.stats()));
                Stats.DeviceStats ap = x.aperture();
                assertEquals(MiB, ap.apertureBytes(), ap.toString());
                assertEquals(768 << 10, ap.usedBytes(), ap.toString());
                assertEquals(256 << 10, ap.freeBytes(), ap.toString());
                assertEquals(256 << 10, ap.largestFreeBytes(), ap.toString());
                assertEquals(1, ap.freeWindows(), ap.toString());
                assertEquals(2, ap.windows(), ap.toString());
                assertEquals("reclaim", ap.whenFull());
                assertEquals(2, x.liveMappings());
                assertEquals(1, x.exports());
                assertEquals(4 * MiB, x.exportedBytes());
                assertEquals(0, x.revokedMappings());
                vma.ops().deviceUnmap(vma, nic.endpoint(), a);
                vma.ops().deviceUnmap(vma, nic.endpoint(), b);
            }
            e.free();
            assertTrue(dm.stats().exporters().stream().noneMatch(s -> s.name().equals("gpu9")),
                    "a device with nothing exported is no exporter: " + dm.stats());
        }
    }

    @Test
    void aMappingShowsInTheApertureAndGoesWhenClosed() throws Exception {
        Path file = EXT4.file("stats.bin");
        Workloads.write(file, 0, 2 * MiB, 3);
        Workloads.syncAndEvict(file);
        String loop = Path.of(EXT4.filesystem().loopDevice()).getFileName().toString();
        try (DirectMap dm = DirectMap.open(); Device gpu = dm.device(DeviceKind.GPU)) {
            long faultsBefore = dm.stats().bindings().faults();
            try (FileMapping m = gpu.map(file); Read r = m.read(0, m.length())) {
                assertEquals(2 * MiB, r.directBytes());
                Stats s = dm.stats();
                Stats.DeviceStats d = s.devices().stream().filter(x -> x.name().equals(loop)).findFirst().orElseThrow(
                        () -> new AssertionError(loop + " in " + s));
                assertEquals(2 * MiB, d.usedBytes(), d.toString());
                assertEquals(d.apertureBytes() - 2 * MiB, d.freeBytes(), d.toString());
                assertEquals("refuse", d.whenFull());
                assertTrue(d.windows() >= 1 && d.peerMappings() >= 1 && s.liveMappings() >= 1 && s.peerMappings() >= 1, s.toString());
                assertTrue(s.bindings().faults() > faultsBefore && s.bindings().directBytes() >= 2 * MiB, s.toString());
            }
            Stats after = dm.stats();
            Stats.DeviceStats d = after.devices().stream().filter(x -> x.name().equals(loop)).findFirst().orElseThrow();
            assertEquals(0, d.usedBytes(), d.toString());
            assertEquals(1, d.freeWindows(), d.toString());
            assertEquals(0, after.liveMappings(), after.toString());
        }
    }
}
