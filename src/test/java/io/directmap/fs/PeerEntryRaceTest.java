package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.directmap.block.BlockChange;
import io.directmap.block.BlockDevice;
import io.directmap.device.SoftwareDevice;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Vma;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A device taking its peer mappings back (reclaim, shrink, detach) while device_map is between
 * tracking a mapping and recording its peer-mapping entries: the mapping it took back must not
 * leave entries behind in the device's reverse map, nor windows in its aperture.
 */
class PeerEntryRaceTest {
    static final long KiB = 1 << 10;
    static final int CYCLES = 20_000;
    static final long BOUND_NANOS = 8_000_000_000L;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @Test
    void aDeviceInvalidationRacingDeviceMapLeavesNoPeerEntries() throws Exception {
        Path file = EXT4.file("race.bin");
        Workloads.write(file, 0, 256 * KiB, 5);
        Workloads.syncAndEvict(file);
        String loop = Path.of(EXT4.filesystem().loopDevice()).getFileName().toString();
        try (FsStack mm = FsStack.open(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file)) {
            DeviceMapping first = vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), 0, 64 * KiB));
            vma.ops().deviceUnmap(vma, gpu.endpoint(), first);
            BlockDevice dev = mm.blocks().known().stream().filter(d -> d.name().equals(loop)).findFirst().orElseThrow();
            AtomicBoolean stop = new AtomicBoolean();
            AtomicReference<Throwable> failed = new AtomicReference<>();
            Thread taker = Thread.ofPlatform().name("device-takes-back").start(() -> {
                try {
                    while (!stop.get()) {
                        mm.blocks().peers().invalidate(dev, 0, Long.MAX_VALUE, BlockChange.APERTURE_RECLAIMED, "race test");
                    }
                } catch (Throwable t) {
                    failed.set(t);
                }
            });
            long t0 = System.nanoTime();
            try {
                for (int i = 0; i < CYCLES && System.nanoTime() - t0 < BOUND_NANOS; i++) {
                    DeviceMapping m = vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), 0, 64 * KiB));
                    vma.ops().deviceUnmap(vma, gpu.endpoint(), m);
                }
            } finally {
                stop.set(true);
                taker.join();
            }
            assertNull(failed.get(), () -> "the invalidating thread failed: " + failed.get());
            assertEquals(0, mm.blocks().peers().size(), () -> "entries left: "
                    + mm.blocks().peers().overlapping(dev, 0, Long.MAX_VALUE));
            assertEquals(0, dev.aperture().usedBytes(), dev.aperture().toString());
        }
    }
}
