package io.directmap.coherence;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.InvalidationReport;
import io.directmap.fs.OpenFile;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapMode;
import io.directmap.mm.Vma;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Invalidation takes back exactly what overlaps the change: other ranges and other files keep
 * their mappings. Here with range events switched off (read leases: a write takes back the whole
 * file, never another file); {@link RangeInvalidationTest} has them on.
 */
class PrecisionTest {
    static final long MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    FsStack mm;
    SoftwareDevice gpu;
    Path a, b;
    final List<InvalidationReport> reports = new ArrayList<>();

    @BeforeEach
    void files() throws IOException {
        mm = FsStack.open(io.directmap.pci.Topology.defaults(), io.directmap.fs.Policy.defaults().withRangeEvents(false));
        gpu = SoftwareDevice.create("gpu0", mm.topology());
        mm.fs().addInvalidationListener(reports::add);
        a = EXT4.file("a.bin");
        b = EXT4.file("b.bin");
        Workloads.write(a, 0, 4 * MiB, 1);
        Workloads.write(b, 0, 4 * MiB, 2);
        Workloads.syncAndEvict(a);
        Workloads.syncAndEvict(b);
    }

    @AfterEach
    void close() throws IOException {
        gpu.close();
        mm.close();
        Files.deleteIfExists(a);
        Files.deleteIfExists(b);
    }

    /** Reads the whole binding once, so every window is faulted; returns the bytes. */
    static byte[] readAll(Binding binding, SoftwareDevice dev, long size) throws IOException {
        try (DeviceMemory.Buffer buf = dev.allocate("test", size)) {
            binding.read(0, size, buf.segment(), n -> { });
            return buf.segment().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        }
    }

    @Test
    void anotherProcessWritingOneFileLeavesTheOtherFileAlone() throws IOException {
        try (Vma va = mm.mmap(a); Vma vb = mm.mmap(b);
             Binding ba = gpu.bind(va, 0, 4 * MiB, MiB, Set.of(), MapMode.MIXED);
             Binding bb = gpu.bind(vb, 0, 4 * MiB, MiB, Set.of(), MapMode.MIXED)) {
            readAll(ba, gpu, 4 * MiB);
            readAll(bb, gpu, 4 * MiB);
            assertEquals(4 * MiB, ba.directBytes() + 0, "a was read directly");
            List<Long> bIds = bb.liveMappings().stream().map(DeviceMapping::id).toList();

            Commands.run("dd", "if=/dev/zero", "of=" + a, "bs=4096", "count=1", "conv=notrunc,fsync", "status=none");

            assertEquals(4, ba.invalidations(), "every window of a was taken back: the lease broke for the whole file");
            assertEquals(0, bb.invalidations(), "b was not touched");
            assertEquals(bIds, bb.liveMappings().stream().map(DeviceMapping::id).toList(), "b keeps the very same mappings");
            assertTrue(reports.stream().allMatch(r -> r.file().equals(a)), "only a's mappings were invalidated: " + reports);
            assertTrue(reports.stream().anyMatch(r -> r.invalidation().cause() == Invalidation.Cause.WRITE_OPEN
                    && r.invalidation().heldBack()), "the write was held back until the devices let go: " + reports);

            byte[] after = readAll(ba, gpu, 4 * MiB);
            assertArrayEquals(Workloads.read(a, 0, (int) (4 * MiB)), after, "a reads its new bytes after faulting again");
            assertEquals(4, ba.refaults(), "each window of a faulted again");
        }
    }

    @Test
    void aChangeToOneRangeLeavesTheOtherRangesAlone() throws IOException {
        try (Vma va = mm.mmap(a); Binding ba = gpu.bind(va, 0, 4 * MiB, MiB, Set.of(), MapMode.MIXED)) {
            readAll(ba, gpu, 4 * MiB);
            List<DeviceMapping> before = ba.liveMappings();

            InvalidationReport r = mm.fs().invalidate(OpenFile.of(va), MiB + 4096, MiB + 8192, Invalidation.Cause.CHANGED, "one page of window 1");

            assertEquals(1, r.mappings(), "exactly the one overlapping mapping: " + r);
            assertEquals(1, ba.invalidations());
            List<DeviceMapping> after = ba.liveMappings();
            assertEquals(3, after.size(), "the three other windows are still mapped");
            assertTrue(before.get(0) == after.get(0) && before.get(2) == after.get(1) && before.get(3) == after.get(2),
                    "and they are the same mappings as before");
        }
    }
}
