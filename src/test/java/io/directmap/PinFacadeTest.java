package io.directmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.testing.Bytes;
import io.directmap.testing.ChildWriter;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The library's pin: Device.pin gives a Pinned that reads the file's bytes and refuses writers until closed, or a Refused with the reason. */
class PinFacadeTest {
    static final long MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @Test
    void aPinnedRangeReadsTheFileAndRefusesWritersUntilClosed() throws Exception {
        Path file = EXT4.file("facade-pin.bin");
        Workloads.write(file, 0, 4 * MiB, 3);
        Workloads.syncAndEvict(file);
        try (DirectMap dm = DirectMap.open(); Device gpu = dm.device(DeviceKind.GPU); DeviceBuffer mem = gpu.allocate(2 * MiB)) {
            Pin.Pinned p = assertInstanceOf(Pin.Pinned.class, gpu.pin(file, MiB, 3 * MiB));
            assertTrue(p.parts().stream().allMatch(Part::direct), p.parts().toString());
            p.readInto(mem);
            Bytes.assertDeviceHoldsFile(file, MiB, mem.memory());
            assertTrue(ChildWriter.ddFailure(file).contains("Text file busy"));
            try (DeviceBuffer small = gpu.allocate(4096)) {
                assertThrows(IOException.class, () -> p.readInto(small));
            }
            p.close();
            p.close();
            assertEquals(null, ChildWriter.ddFailure(file));
        }
    }

    @Test
    void aCachedRangeIsRefusedWithTheReason() throws Exception {
        Path file = EXT4.file("facade-cached.bin");
        Workloads.write(file, 0, 2 * MiB, 4);
        Workloads.syncAndEvict(file);
        Workloads.cache(file, 0, 2 * MiB);
        try (DirectMap dm = DirectMap.open(); Device gpu = dm.device(DeviceKind.GPU)) {
            Pin.Refused r = assertInstanceOf(Pin.Refused.class, gpu.pin(file, 0, 2 * MiB));
            assertEquals("pin_not_direct", r.why().reason());
            assertEquals(RefusedBy.FILESYSTEM, r.why().refusedBy());
            assertTrue(r.why().detail().contains("page_cached"), r.why().detail());
        }
        assertEquals(null, ChildWriter.ddFailure(file));
    }

    @Test
    void closingTheDeviceEndsItsPins() throws Exception {
        Path file = EXT4.file("facade-device-close.bin");
        Workloads.write(file, 0, MiB, 5);
        Workloads.syncAndEvict(file);
        try (DirectMap dm = DirectMap.open()) {
            Device gpu = dm.device(DeviceKind.GPU);
            assertInstanceOf(Pin.Pinned.class, gpu.pin(file, 0, MiB));
            assertTrue(ChildWriter.ddFailure(file).contains("Text file busy"));
            gpu.close();
            assertEquals(null, ChildWriter.ddFailure(file));
        }
    }
}
