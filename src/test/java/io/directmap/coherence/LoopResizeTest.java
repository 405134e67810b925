package io.directmap.coherence;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.block.BlockReason;
import io.directmap.device.Binding;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.MapMode;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** A loop device that shrinks under live mappings takes back exactly those past its new end. */
class LoopResizeTest {
    static final long MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    static long minOffset(DeviceMapping m) {
        return m.segments().stream().filter(s -> s instanceof Segment.Direct).mapToLong(s -> ((Segment.Direct) s).deviceOffset())
                .min().orElseThrow();
    }

    static long maxEnd(DeviceMapping m) {
        return m.segments().stream().filter(s -> s instanceof Segment.Direct)
                .mapToLong(s -> ((Segment.Direct) s).deviceOffset() + s.length()).max().orElseThrow();
    }

    @Test
    void shrinkingTheLoopDeviceTakesBackTheMappingsPastItsEnd() throws IOException, InterruptedException {
        Path first = EXT4.file("first.bin"), second = EXT4.file("second.bin");
        Workloads.write(first, 0, 2 * MiB, 1);
        Workloads.syncAndEvict(first);
        Workloads.write(second, 0, 2 * MiB, 2);
        Workloads.syncAndEvict(second);
        Path image = EXT4.filesystem().image();
        long size = Files.size(image);
        String loop = EXT4.filesystem().loopDevice();
        try (FsStack mm = FsStack.open();
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma v1 = mm.mmap(first); Vma v2 = mm.mmap(second);
             Binding b1 = gpu.bind(v1, 0, 2 * MiB, 2 * MiB, Set.of(), MapMode.MIXED);
             Binding b2 = gpu.bind(v2, 0, 2 * MiB, 2 * MiB, Set.of(), MapMode.MIXED)) {
            PrecisionTest.readAll(b1, gpu, 2 * MiB);
            PrecisionTest.readAll(b2, gpu, 2 * MiB);
            DeviceMapping m1 = b1.liveMappings().getFirst(), m2 = b2.liveMappings().getFirst();
            assertEquals(2 * MiB, m1.directBytes());
            assertEquals(2 * MiB, m2.directBytes());
            boolean firstLow = minOffset(m1) < minOffset(m2);
            DeviceMapping low = firstLow ? m1 : m2, high = firstLow ? m2 : m1;
            Binding lowB = firstLow ? b1 : b2, highB = firstLow ? b2 : b1;
            assertTrue(maxEnd(low) <= minOffset(high), "the two files do not interleave on the device");
            long cut = minOffset(high) / 4096 * 4096;
            try {
                Commands.run("truncate", "-s", Long.toString(cut), image.toString());
                Commands.run("losetup", "-c", loop);
                long deadline = System.nanoTime() + 5_000_000_000L;
                while (highB.invalidations() == 0 && System.nanoTime() < deadline) Thread.sleep(5);
                assertEquals(1, highB.invalidations(), "the mapping past the new end was taken back");
                assertEquals(0, lowB.invalidations(), "the mapping below the new end was left alone");
                assertTrue(lowB.liveMappings().getFirst() == low, "and is the very same mapping");
                Vma highVma = firstLow ? v2 : v1;
                DeviceMapping again = highVma.ops().deviceMap(highVma, new MapRequest(gpu.endpoint(), 0, 2 * MiB));
                try {
                    assertEquals(0, again.directBytes(), "nothing past the end is granted again: " + again.segments());
                    assertTrue(again.segments().stream().allMatch(s -> s instanceof Segment.Fallback f
                            && f.refusal().reason() == BlockReason.BEYOND_DEVICE), "refused as beyond_device: " + again.segments());
                } finally {
                    highVma.ops().deviceUnmap(highVma, gpu.endpoint(), again);
                }
            } finally {
                Commands.run("truncate", "-s", Long.toString(size), image.toString());
                Commands.run("losetup", "-c", loop);
            }
            // Grown back: the device serves the range again and the bytes are right.
            Thread.sleep(60); // the block watcher sees the new size
            byte[] got = PrecisionTest.readAll(highB, gpu, 2 * MiB);
            assertArrayEquals(Workloads.read(firstLow ? second : first, 0, (int) (2 * MiB)), got);
        } finally {
            Files.deleteIfExists(first);
            Files.deleteIfExists(second);
        }
    }
}
