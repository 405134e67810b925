package io.directmap.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.lang.Xorshift;
import io.directmap.mm.AddressSpace;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.pci.Aperture;
import io.directmap.pci.PciTree;
import io.directmap.pci.Topology;
import io.directmap.sys.FileHandle;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The exporter's BAR aperture is a {@link Aperture}, as a block device's: each direct segment of a
 * peer mapping of exported memory holds a window, at whose bus address the importer reaches it;
 * windows never overlap, unmapping frees exactly them; a full aperture refuses with its numbers, or
 * (bar NAME SIZE reclaim) takes the least recently granted window back, its importer letting go
 * first. And the exporter's refusals carry the PCI tree's reason.
 */
class ExporterApertureTest {
    static final long KiB = 1 << 10, MiB = 1 << 20, PAGE = io.directmap.sys.Process.PAGE_SIZE;

    final List<AutoCloseable> opened = new ArrayList<>();
    final int handlesBefore = FileHandle.openCount();

    @AfterEach
    void closeAll() throws Exception {
        Exception failure = null;
        for (int i = opened.size() - 1; i >= 0; i--) {
            try {
                opened.get(i).close();
            } catch (Exception e) {
                if (failure == null) failure = e; else failure.addSuppressed(e);
            }
        }
        if (failure != null) throw failure;
        assertEquals(handlesBefore, FileHandle.openCount(), "every descriptor was given back");
    }

    <T extends AutoCloseable> T open(T t) {
        opened.add(t);
        return t;
    }

    record Stack(AddressSpace mm, SoftwareDevice gpu, SoftwareDevice nic, ExportedMemory exported, Vma vma) {}

    Stack stack(Topology t, long size) throws IOException {
        AddressSpace mm = open(AddressSpace.create(t));
        SoftwareDevice gpu = open(SoftwareDevice.create("gpu1", t));
        SoftwareDevice nic = open(SoftwareDevice.create("nic0", t));
        ExportedMemory e = open(gpu.export(size));
        Xorshift.seeded(5).fill(e.memory());
        Vma vma = open(e.mmap(mm));
        return new Stack(mm, gpu, nic, e, vma);
    }

    DeviceMapping map(Stack s, long start, long end, MapMode mode) throws IOException {
        return s.vma().ops().deviceMap(s.vma(), new MapRequest(s.nic().endpoint(), start, end, Set.of(), mode));
    }

    @Test
    void aFullApertureRefusesWithItsNumbers() throws IOException {
        Stack s = stack(Topology.parse("bar gpu1 1M\n", "test topology"), 4 * MiB);
        DeviceMapping first = map(s, 0, 768 * KiB, MapMode.MIXED);
        assertEquals(768 * KiB, first.directBytes());
        DeviceMapping m = map(s, MiB, 4 * MiB, MapMode.MIXED);
        assertEquals(256 * KiB, m.directBytes(), "what is left of the aperture went direct: " + m.segments());
        Segment.Fallback f = assertInstanceOf(Segment.Fallback.class, m.segments().getLast());
        assertSame(ExporterReason.APERTURE_FULL, f.refusal().reason());
        assertEquals(MiB + 256 * KiB, f.start());
        String d = f.refusal().detail();
        assertTrue(d.contains("gpu1's aperture of 1 MiB has 0 B free (largest free window 0 B, 0 free windows, 2 held)"), d);
        assertTrue(d.contains("2.75 MiB more asked") && d.contains("policy refuse") && d.contains("bar gpu1 SIZE reclaim"), d);
        assertEquals(1, s.gpu().apertureRefusals());
        assertEquals(0, s.gpu().apertureReclaims());
        assertEquals(Aperture.WhenFull.REFUSE, s.gpu().apertureWhenFull());

        // Freeing the first mapping's window leaves exactly it free: the refusal says so.
        s.vma().ops().deviceUnmap(s.vma(), s.nic().endpoint(), first);
        DeviceMapping big = map(s, 0, MiB, MapMode.ALL_OR_NOTHING);
        Segment.Fallback whole = assertInstanceOf(Segment.Fallback.class, big.segments().getFirst());
        assertSame(ExporterReason.ALL_OR_NOTHING, whole.refusal().reason());
        assertTrue(whole.refusal().detail().contains("has 768 KiB free (largest free window 768 KiB, 1 free windows, 1 held)"),
                whole.refusal().detail());
        assertEquals(256 * KiB, s.gpu().apertureUsed(), "an all-or-nothing refusal holds nothing: " + s.gpu().aperture());
        s.vma().ops().deviceUnmap(s.vma(), s.nic().endpoint(), big);
        s.vma().ops().deviceUnmap(s.vma(), s.nic().endpoint(), m);
        assertEquals(0, s.gpu().apertureUsed());
    }

    @Test
    void windowsNeverOverlapAndAllIsFreeAfterRandomMapsAndUnmaps() throws IOException {
        long size = 8 * MiB;
        Stack s = stack(Topology.parse("bar gpu1 2M\n", "test topology"), size);
        Topology.Endpoint gpu = s.gpu().endpoint();
        Xorshift rnd = Xorshift.seeded(42);
        List<DeviceMapping> live = new ArrayList<>();
        long refused = 0;
        for (int i = 0; i < 100_000; i++) {
            if (!live.isEmpty() && (rnd.nextInt(3) == 0 || s.gpu().aperture().usage().freeBytes() == 0)) {
                DeviceMapping m = live.remove(rnd.nextInt(live.size()));
                s.vma().ops().deviceUnmap(s.vma(), s.nic().endpoint(), m);
            } else {
                long start = rnd.nextInt((int) (size / PAGE)) * PAGE;
                long end = Math.min(size, start + (1 + rnd.nextInt(64)) * PAGE);
                DeviceMapping m = map(s, start, end, rnd.nextInt(4) == 0 ? MapMode.ALL_OR_NOTHING : MapMode.MIXED);
                live.add(m);
                refused += m.segments().stream().filter(x -> x instanceof Segment.Fallback).count();
            }
            if (i % 500 == 0) checkWindows(s, gpu, live);
        }
        checkWindows(s, gpu, live);
        assertTrue(refused > 0, "the aperture was full at times");
        for (DeviceMapping m : live) s.vma().ops().deviceUnmap(s.vma(), s.nic().endpoint(), m);
        Aperture.Usage u = s.gpu().aperture().usage();
        assertEquals(0, u.usedBytes(), u.toString());
        assertEquals(0, u.windows(), u.toString());
        assertEquals(1, u.freeWindows(), "everything unmapped is one free window again: " + u);
        assertEquals(2 * MiB, u.largestFreeBytes());
    }

    /** Every direct segment's bus address is one held window's, the windows do not overlap, and the aperture holds exactly them. */
    static void checkWindows(Stack s, Topology.Endpoint gpu, List<DeviceMapping> live) {
        TreeMap<Long, Long> byBus = new TreeMap<>();
        long direct = 0;
        for (DeviceMapping m : live) {
            for (Segment seg : m.segments()) {
                if (!(seg instanceof Segment.Direct d)) continue;
                long offset = d.busAddress() - gpu.busBase();
                long length = (d.length() + PAGE - 1) / PAGE * PAGE;
                assertTrue(offset >= 0 && offset + length <= s.gpu().aperture().sizeBytes(), d + " inside the aperture");
                assertEquals(null, byBus.put(offset, length), "two segments at one bus address: " + d);
                direct += length;
            }
        }
        long end = -1;
        for (var e : byBus.entrySet()) {
            assertTrue(e.getKey() >= end, "window at " + e.getKey() + " overlaps the one before (ends " + end + ")");
            end = e.getKey() + e.getValue();
        }
        List<Aperture.Window> held = s.gpu().aperture().windows();
        assertEquals(byBus.size(), held.size(), "one window per direct segment");
        for (Aperture.Window w : held) assertEquals(byBus.get(w.offset()), w.length(), "the aperture holds " + w);
        assertEquals(direct, s.gpu().apertureUsed());
    }

    @Test
    void aReclaimingApertureTakesTheLeastRecentlyGrantedWindowBackItsImporterLettingGoFirst() throws IOException {
        Stack s = stack(Topology.parse("bar gpu1 1M reclaim\n", "test topology"), 2 * MiB);
        byte[] pattern = s.exported().memory().toArray(ValueLayout.JAVA_BYTE);
        Binding b = open(s.nic().bind(s.vma(), 0, 2 * MiB, MiB, Set.of(), MapMode.MIXED));
        DeviceMemory.Buffer dst = open(s.nic().allocate("p2p", MiB));
        List<String> letGo = new ArrayList<>();
        b.onLetGo(l -> letGo.add(l.invalidation().cause() + ": " + l.invalidation().detail()));

        Binding.Read r = b.read(0, MiB, dst.segment(), done -> { });
        assertEquals(MiB, r.directBytes());
        assertEquals(1, s.exported().liveMappings());

        // The second window finds the aperture full: the first one's mapping is taken back, and nic0 lets go of it.
        Binding.Read second = b.read(MiB, MiB, dst.segment(), done -> { });
        assertEquals(MiB, second.directBytes(), "the reclaimed window served the new mapping");
        assertArrayEquals(java.util.Arrays.copyOfRange(pattern, (int) MiB, (int) (2 * MiB)), dst.segment().toArray(ValueLayout.JAVA_BYTE));
        assertEquals(1, s.gpu().apertureReclaims());
        assertEquals(0, s.gpu().apertureRefusals());
        assertEquals(1, letGo.size(), letGo.toString());
        assertTrue(letGo.getFirst().contains("gpu1's aperture is full") && letGo.getFirst().contains("least recently granted"), letGo.toString());
        assertEquals(0, s.exported().revokedMappings(), "nic0 let go by itself");
        assertEquals(1, s.exported().liveMappings());
        assertEquals(MiB, s.gpu().apertureUsed());

        // The first window faults again on its next read, reclaiming in its turn.
        Binding.Read again = b.read(0, MiB, dst.segment(), done -> { });
        assertEquals(MiB, again.directBytes());
        assertArrayEquals(java.util.Arrays.copyOf(pattern, (int) MiB), dst.segment().toArray(ValueLayout.JAVA_BYTE));
        assertEquals(2, s.gpu().apertureReclaims());
        b.close();
        assertEquals(0, s.gpu().apertureUsed());
    }

    @Test
    void theExportersRefusalsCarryThePciTreesReason() throws IOException {
        String tree = "host-bridge hb0\nswitch sw0 under hb0\nswitch sw1 under hb0\nplace gpu1 under sw0\nplace nic0 under sw1\n";
        Stack s = stack(Topology.parse(tree, "t", PciTree.EMPTY), MiB);
        Segment.Fallback f = assertInstanceOf(Segment.Fallback.class, map(s, 0, MiB, MapMode.MIXED).segments().getFirst());
        assertSame(ExporterReason.NO_P2P_PATH, f.refusal().reason());
        assertTrue(f.refusal().detail().contains("host bridge hb0") && f.refusal().detail().contains("host-bridge hb0 routes-p2p"),
                f.refusal().detail());
    }

    @Test
    void theExportersAtomicsRefusalNamesTheLinkThatDoesNotRouteThem() throws IOException {
        String tree = "host-bridge hb0\nswitch sw0 under hb0\nswitch sw1 under sw0\nplace nic0 under sw1\nplace gpu1 under sw0\n"
                + "no-atomic-routing sw1\n";
        Stack s = stack(Topology.parse(tree, "t", PciTree.EMPTY), MiB);
        DeviceMapping plain = map(s, 0, MiB, MapMode.MIXED);
        assertEquals(MiB, plain.directBytes(), "peer to peer is allowed: only atomics are not");
        s.vma().ops().deviceUnmap(s.vma(), s.nic().endpoint(), plain);
        DeviceMapping atomic = s.vma().ops().deviceMap(s.vma(), new MapRequest(s.nic().endpoint(), 0, MiB,
                Set.of(MapFlag.SUPPORT_ATOMIC_OP), MapMode.MIXED));
        Segment.Fallback f = assertInstanceOf(Segment.Fallback.class, atomic.segments().getFirst());
        assertSame(ExporterReason.NO_ATOMICS_ON_PATH, f.refusal().reason());
        assertTrue(f.refusal().detail().contains("sw1/0 does not route AtomicOps") && f.refusal().detail().contains("t:6"),
                f.refusal().detail());
        assertFalse(s.gpu().apertureUsed() > 0);
    }
}
