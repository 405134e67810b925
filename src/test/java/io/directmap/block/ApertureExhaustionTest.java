package io.directmap.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.Policy;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.IntervalNotifier;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.pci.Aperture;
import io.directmap.pci.Topology;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * BAR exhaustion through the real stack (ext4 on a loop device whose topology gives it 1 MiB of
 * aperture): refused with the numbers by default; with reclaim, the least recently used mapping is
 * taken back (its owner lets go first) and the new one granted. Everything given back is one free
 * window of the whole aperture again.
 */
class ApertureExhaustionTest {
    static final long KiB = 1 << 10, MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @TempDir static Path dir;
    static Path file;
    static String loop;

    @BeforeAll
    static void writeColdFile() throws Exception {
        file = EXT4.file("bar.bin");
        Workloads.write(file, 0, 4 * MiB, 11);
        Workloads.syncAndEvict(file);
        loop = Path.of(EXT4.filesystem().loopDevice()).getFileName().toString();
    }

    static FsStack stack(String rules) throws Exception {
        Workloads.syncAndEvict(file);
        Path t = Files.writeString(dir.resolve("topology-" + Math.abs(rules.hashCode())), rules);
        return FsStack.open(Topology.load(t), Policy.defaults());
    }

    static BlockDevice device(FsStack mm) {
        return mm.blocks().known().stream().filter(d -> d.name().equals(loop)).findFirst().orElseThrow();
    }

    @Test
    void fullApertureRefusesWithItsNumbersAndIsWhollyFreeAfterUnmap() throws Exception {
        try (FsStack mm = stack("bar " + loop + " 1M\n");
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file)) {
            List<DeviceMapping> held = new ArrayList<>();
            try {
                // Four requests of 512 KiB: two fill the aperture, two are refused.
                for (long at = 0; at < 2 * MiB; at += 512 * KiB) {
                    held.add(vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), at, at + 512 * KiB)));
                }
                assertEquals(512 * KiB, held.get(0).directBytes(), held.get(0).segments().toString());
                assertEquals(512 * KiB, held.get(1).directBytes(), held.get(1).segments().toString());
                var a = (Segment.Direct) held.get(0).segments().getFirst();
                var b = (Segment.Direct) held.get(1).segments().getFirst();
                assertNotEquals(a.busAddress(), b.busAddress());
                assertTrue(Math.abs(a.busAddress() - b.busAddress()) >= 512 * KiB, "windows do not overlap: " + a + " " + b);
                for (DeviceMapping refused : held.subList(2, 4)) {
                    assertEquals(0, refused.directBytes());
                    var f = assertInstanceOf(Segment.Fallback.class, refused.segments().getFirst());
                    assertEquals(BlockReason.APERTURE_EXHAUSTED, f.refusal().reason(), f.toString());
                    String d = f.refusal().detail();
                    assertTrue(d.contains(loop + "'s aperture of 1048576 bytes has 0 free (largest free window 0 bytes")
                            && d.contains("524288 asked") && d.contains("policy refuse"), d);
                }
                BlockDevice dev = device(mm);
                assertEquals(new Aperture.Usage(MiB, MiB, 0, 0, 0, 2), dev.aperture().usage());
                assertTrue(dev.apertureRefusals() >= 2);
            } finally {
                for (DeviceMapping m : held) vma.ops().deviceUnmap(vma, gpu.endpoint(), m);
            }
            assertEquals(new Aperture.Usage(MiB, 0, MiB, MiB, 1, 0), device(mm).aperture().usage());
        }
    }

    @Test
    void reclaimTakesBackTheLeastRecentlyUsedMappingAfterItsOwnerLetGo() throws Exception {
        try (FsStack mm = stack("bar " + loop + " 1M reclaim\n");
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file)) {
            List<String> events = new CopyOnWriteArrayList<>();
            DeviceMapping[] m = new DeviceMapping[3];
            List<IntervalNotifier> notifiers = new ArrayList<>();
            try {
                for (int i = 0; i < 3; i++) {
                    int k = i;
                    long s = i * 512 * KiB;
                    // The importer: on invalidation it lets go (device_unmap) before acknowledging.
                    notifiers.add(vma.insertNotifier(s, s + 512 * KiB, (n, inv) -> {
                        events.add("mapping " + k + " let go: " + inv.detail());
                        if (m[k] != null) vma.ops().deviceUnmap(vma, gpu.endpoint(), m[k]);
                    }));
                }
                m[0] = vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), 0, 512 * KiB));
                m[1] = vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), 512 * KiB, MiB));
                assertEquals(MiB, m[0].directBytes() + m[1].directBytes());
                assertTrue(events.isEmpty(), events.toString());
                m[2] = vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), MiB, MiB + 512 * KiB));
                events.add("mapping 2 granted");
                assertEquals(512 * KiB, m[2].directBytes(), m[2].segments().toString());
                assertEquals(2, events.size(), events.toString());
                assertTrue(events.get(0).startsWith("mapping 0 let go: aperture_reclaimed: " + loop + "'s aperture is full"), events.toString());
                assertEquals("mapping 2 granted", events.get(1));
                assertFalse(m[0].isLive(), "the least recently used mapping was taken back");
                assertTrue(m[1].isLive(), "the more recent one stays");
                BlockDevice dev = device(mm);
                assertEquals(1, dev.apertureReclaims());
                assertEquals(new Aperture.Usage(MiB, MiB, 0, 0, 0, 2), dev.aperture().usage());
            } finally {
                for (DeviceMapping x : m) if (x != null) vma.ops().deviceUnmap(vma, gpu.endpoint(), x);
            }
            assertEquals(new Aperture.Usage(MiB, 0, MiB, MiB, 1, 0), device(mm).aperture().usage());
        }
    }

    /**
     * Two importers of the same file range hold a window each: a reclaim takes back the window
     * least recently granted and only the mapping that holds it, not the other importer's mapping
     * of the same device range.
     */
    @Test
    void reclaimTakesBackOnlyTheHolderOfTheLeastRecentlyUsedWindow() throws Exception {
        try (FsStack mm = stack("bar " + loop + " 1M reclaim\n");
             SoftwareDevice gpu0 = SoftwareDevice.create("gpu0", mm.topology());
             SoftwareDevice gpu1 = SoftwareDevice.create("gpu1", mm.topology());
             Vma vma0 = mm.mmap(file); Vma vma1 = mm.mmap(file)) {
            DeviceMapping old = null, recent = null, next = null;
            try {
                old = vma0.ops().deviceMap(vma0, new MapRequest(gpu0.endpoint(), 0, 512 * KiB));
                recent = vma1.ops().deviceMap(vma1, new MapRequest(gpu1.endpoint(), 0, 512 * KiB));
                assertEquals(MiB, old.directBytes() + recent.directBytes(), "both hold a window of the same range");
                next = vma0.ops().deviceMap(vma0, new MapRequest(gpu0.endpoint(), MiB, MiB + 512 * KiB));
                assertEquals(512 * KiB, next.directBytes(), next.segments().toString());
                assertFalse(old.isLive(), "the holder of the least recently used window was taken back");
                assertTrue(recent.isLive(), "gpu1's mapping of the same device range keeps its own window");
                BlockDevice dev = device(mm);
                assertEquals(1, dev.apertureReclaims());
                assertEquals(2, mm.blocks().peers().size(), mm.blocks().peers().devices().toString());
            } finally {
                if (old != null) vma0.ops().deviceUnmap(vma0, gpu0.endpoint(), old);
                if (recent != null) vma1.ops().deviceUnmap(vma1, gpu1.endpoint(), recent);
                if (next != null) vma0.ops().deviceUnmap(vma0, gpu0.endpoint(), next);
            }
            assertEquals(new Aperture.Usage(MiB, 0, MiB, MiB, 1, 0), device(mm).aperture().usage());
        }
    }

    /**
     * A fragmented aperture gives one device range two windows apart: they stay two segments, each
     * with its own bus address, and unmapping gives back exactly those two windows.
     */
    @Test
    void aRangeGrantedInTwoWindowsKeepsBothBusAddresses() throws Exception {
        try (FsStack mm = stack("bar " + loop + " 1M\n");
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file)) {
            List<DeviceMapping> held = new ArrayList<>();
            try {
                for (long at = 0; at < MiB; at += 256 * KiB) {
                    held.add(vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), at, at + 256 * KiB)));
                }
                // Free windows 0 and 2: two holes of 256 KiB, apart.
                vma.ops().deviceUnmap(vma, gpu.endpoint(), held.get(0));
                vma.ops().deviceUnmap(vma, gpu.endpoint(), held.get(2));
                BlockDevice dev = device(mm);
                assertEquals(2, dev.aperture().usage().freeWindows(), dev.aperture().toString());
                DeviceMapping two = vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), 2 * MiB, 2 * MiB + 512 * KiB));
                held.add(two);
                List<Segment.Direct> direct = two.segments().stream().filter(s -> s instanceof Segment.Direct)
                        .map(s -> (Segment.Direct) s).toList();
                assertEquals(512 * KiB, two.directBytes(), two.segments().toString());
                assertEquals(2, direct.size(), "two windows apart are two segments: " + two.segments());
                long base = dev.endpoint().busBase();
                assertEquals(List.of(base, base + 512 * KiB), direct.stream().map(Segment.Direct::busAddress).toList());
                vma.ops().deviceUnmap(vma, gpu.endpoint(), two);
                assertEquals(new Aperture.Usage(MiB, 512 * KiB, 512 * KiB, 256 * KiB, 2, 2), dev.aperture().usage());
            } finally {
                for (DeviceMapping m : held) vma.ops().deviceUnmap(vma, gpu.endpoint(), m);
            }
            assertEquals(new Aperture.Usage(MiB, 0, MiB, MiB, 1, 0), device(mm).aperture().usage());
        }
    }

    /**
     * A binding's one read pins its first windows, then faults the next: with reclaim, the least
     * recently used window is one this read holds pinned. The reclaim must not wait for itself: the
     * read ends, with the right bytes, and the windows it could not take back are let go after.
     */
    @Test
    void reclaimDuringOneReadThatPinsTheVictimDoesNotWaitForItself() throws Exception {
        try (FsStack mm = stack("bar " + loop + " 1M reclaim\n");
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file);
             io.directmap.device.Binding b = gpu.bind(vma, 0, 4 * MiB, 256 * KiB, java.util.Set.of(), io.directmap.mm.MapMode.MIXED);
             io.directmap.device.DeviceMemory.Buffer buf = gpu.allocate(file.toString(), 4 * MiB)) {
            var read = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(20),
                    () -> b.read(0, 4 * MiB, buf.segment(), n -> { }));
            io.directmap.testing.Bytes.assertDeviceHoldsFile(file, 0, buf.segment());
            assertEquals(4 * MiB, read.directBytes() + read.fallbackBytes());
            assertTrue(read.directBytes() > 0, "some went direct: " + read);
            BlockDevice dev = device(mm);
            assertTrue(dev.apertureReclaims() >= 1, "a reclaim was tried");
            assertTrue(dev.aperture().usedBytes() <= MiB);
        }
    }
}
