package io.directmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
