package io.directmap.coherence;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.block.BlockReason;
import io.directmap.device.Binding;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapMode;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * losetup -d on a busy loop device marks it to go at its last close: the device takes back its
 * peer mappings at once and grants no new ones; the file stays readable through the page cache.
 */
class LoopDetachTest {
    static final long MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = ScratchFs.withoutAutoclear(ScratchFilesystem.Type.EXT4);

    @Test
    void detachingTheLoopDeviceTakesItsMappingsBack() throws IOException, InterruptedException {
        Path file = EXT4.file("detach.bin");
        Workloads.write(file, 0, 4 * MiB, 3);
        Workloads.syncAndEvict(file);
        List<Invalidation> seen = new ArrayList<>();
        try (FsStack mm = FsStack.open();
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file);
             Binding b = gpu.bind(vma, 0, 4 * MiB, MiB, Set.of(), MapMode.MIXED)) {
            mm.fs().addInvalidationListener(r -> seen.add(r.invalidation()));
            PrecisionTest.readAll(b, gpu, 4 * MiB);
            assertEquals(4 * MiB, b.directBytes(), "read directly before the detach");

            Commands.run("losetup", "-d", EXT4.filesystem().loopDevice());

            long deadline = System.nanoTime() + 5_000_000_000L;
            while (b.invalidations() < 4 && System.nanoTime() < deadline) Thread.sleep(5);
            assertEquals(4, b.invalidations(), "every window was taken back");
            assertTrue(seen.stream().allMatch(i -> i.cause() == Invalidation.Cause.BLOCK_DEVICE && i.detail().contains("detach")),
                    "by the block device, saying why: " + seen);
            long directBefore = b.directBytes();
            byte[] got = PrecisionTest.readAll(b, gpu, 4 * MiB);
            assertEquals(directBefore, b.directBytes(), "no read after the detach came from the device directly");
            org.junit.jupiter.api.Assertions.assertArrayEquals(Workloads.read(file, 0, (int) (4 * MiB)), got,
                    "the file still reads right, through the page cache");
            DeviceMapping m = b.liveMappings().getFirst();
            assertTrue(m.segments().stream().allMatch(s -> s instanceof Segment.Fallback f
                    && f.refusal().reason() == BlockReason.GOING_AWAY), "refused as going_away: " + m.segments());
        }
    }
}
