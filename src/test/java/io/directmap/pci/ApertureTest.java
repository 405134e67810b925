package io.directmap.pci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.lang.Xorshift;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The BAR aperture as a resource: windows aligned, never overlapping, all free again once given back. */
class ApertureTest {
    static final long MiB = 1 << 20;

    @Test
    void randomAllocateAndFreeNeverOverlapAndLeaveOneWholeFreeWindow() {
        long seed = 0x5eed_11baL;
        Xorshift rnd = Xorshift.seeded(seed);
        Aperture a = new Aperture("bar0", 4 * MiB);
        List<Aperture.Window> live = new ArrayList<>();
        long expectedUsed = 0;
        for (int i = 0; i < 100_000; i++) {
            if (!live.isEmpty() && (rnd.nextInt(100) < 45 || live.size() > 200)) {
                Aperture.Window w = live.remove(rnd.nextInt(live.size()));
                a.free(w.offset(), w.length());
                expectedUsed -= w.length();
            } else {
                long align = 512L << rnd.nextInt(4);                // 512 .. 4096, as logical block sizes
                long length = 1 + rnd.nextLong(256 * 1024);
                Optional<Aperture.Window> w = a.allocateUpTo(length, align, i);
                if (w.isEmpty()) continue;
                Aperture.Window got = w.get();
                String at = "seed " + seed + ", call " + i + ": " + got;
                assertEquals(0, got.offset() % align, at + " aligned to " + align);
                assertEquals(0, got.length() % align, at + " a multiple of " + align);
                assertTrue(got.length() > 0 && got.length() <= (length + align - 1) / align * align, at + " asked " + length);
                assertTrue(got.offset() >= 0 && got.end() <= a.sizeBytes(), at + " inside the aperture");
                live.add(got);
                expectedUsed += got.length();
            }
            if (i % 1000 == 0) assertConsistent(a, live, expectedUsed, "seed " + seed + ", call " + i);
        }
        assertConsistent(a, live, expectedUsed, "seed " + seed + ", at the end");
        for (Aperture.Window w : live) a.free(w.offset(), w.length());
        Aperture.Usage u = a.usage();
        assertEquals(new Aperture.Usage(4 * MiB, 0, 4 * MiB, 4 * MiB, 1, 0), u, a.toString());
    }

    /** Held windows never overlap each other or free space, and the counts add up. */
    private static void assertConsistent(Aperture a, List<Aperture.Window> live, long used, String at) {
        List<Aperture.Window> held = a.windows();
        assertEquals(live.size(), held.size(), at);
        assertEquals(used, a.usedBytes(), at);
        List<long[]> all = new ArrayList<>();
        for (Aperture.Window w : held) all.add(new long[] {w.offset(), w.end(), 1});
        for (long[] f : a.freeWindows()) all.add(new long[] {f[0], f[1], 0});
        all.sort((x, y) -> Long.compare(x[0], y[0]));
        long at0 = 0, prevFreeEnd = -1;
        for (long[] r : all) {
            assertEquals(at0, r[0], at + ": held and free windows tile the aperture with no overlap or gap");
            assertTrue(r[1] > r[0], at);
            if (r[2] == 0) {
                assertTrue(r[0] != prevFreeEnd, at + ": two free windows touch at " + r[0] + " (not coalesced)");
                prevFreeEnd = r[1];
            }
            at0 = r[1];
        }
        assertEquals(a.sizeBytes(), at0, at);
        Aperture.Usage u = a.usage();
        assertEquals(a.sizeBytes() - used, u.freeBytes(), at);
        assertEquals(a.freeWindows().size(), u.freeWindows(), at);
    }

    @Test
    void fullApertureGrantsThePartThatFitsThenNothing() {
        Aperture a = new Aperture("loop0", MiB);
        Aperture.Window first = a.allocateUpTo(768 * 1024, 4096, 0).orElseThrow();
        Aperture.Window rest = a.allocateUpTo(MiB, 4096, 1).orElseThrow();
        assertEquals(256 * 1024, rest.length(), "the largest free window, in part");
        assertTrue(a.allocateUpTo(4096, 4096, 2).isEmpty());
        assertEquals(new Aperture.Usage(MiB, MiB, 0, 0, 0, 2), a.usage());
        a.free(first.offset(), first.length());
        a.free(rest.offset(), rest.length());
        assertEquals(new Aperture.Usage(MiB, 0, MiB, MiB, 1, 0), a.usage());
    }

    @Test
    void adjacentWindowsAreFreedTogetherAndADoubleFreeIsRefused() {
        Aperture a = new Aperture("loop0", MiB);
        Aperture.Window x = a.allocateUpTo(4096, 4096, 0).orElseThrow();
        Aperture.Window y = a.allocateUpTo(4096, 4096, 4096).orElseThrow();
        assertEquals(x.end(), y.offset());
        a.free(x.offset(), x.length() + y.length());
        assertEquals(0, a.usedBytes());
        var e = assertThrows(IllegalStateException.class, () -> a.free(x.offset(), x.length()));
        assertTrue(e.getMessage().contains("loop0") && e.getMessage().contains("freed twice"), e.getMessage());
    }

    @Test
    void fragmentationIsReported() {
        Aperture a = new Aperture("loop0", 16 * 4096);
        List<Aperture.Window> ws = new ArrayList<>();
        for (int i = 0; i < 16; i++) ws.add(a.allocateUpTo(4096, 4096, i).orElseThrow());
        for (int i = 0; i < 16; i += 2) a.free(ws.get(i).offset(), 4096);
        Aperture.Usage u = a.usage();
        assertEquals(8, u.freeWindows());
        assertEquals(4096, u.largestFreeBytes());
        assertEquals(8 * 4096, u.freeBytes());
        Aperture.Window part = a.allocateUpTo(3 * 4096, 4096, 99).orElseThrow();
        assertEquals(4096, part.length(), "no free window holds 12 KiB: the largest is handed out in part");
    }

    @Test
    void leastRecentlyUsedComesFirstAndATouchMovesItBack() {
        Aperture a = new Aperture("loop0", MiB);
        Aperture.Window x = a.allocateUpTo(4096, 4096, 0).orElseThrow();
        Aperture.Window y = a.allocateUpTo(4096, 4096, 1).orElseThrow();
        assertEquals(List.of(x, y), a.leastRecentlyUsed());
        a.touch(x.offset());
        assertEquals(List.of(y, x), a.leastRecentlyUsed());
    }

    @Test
    void anEmptyApertureGrantsNothing() {
        Aperture a = new Aperture("loop0", 0);
        assertTrue(a.allocateUpTo(4096, 4096, 0).isEmpty());
        assertEquals(new Aperture.Usage(0, 0, 0, 0, 0, 0), a.usage());
    }

    @Test
    void theBarRuleSaysWhatAFullApertureDoes() throws Exception {
        Topology t = Topology.parse("bar loop0 1M reclaim\nbar loop1 2M refuse\nbar loop2 4M\n", "t");
        assertEquals(Aperture.WhenFull.RECLAIM, t.whenFull("loop0"));
        assertEquals(Aperture.WhenFull.REFUSE, t.whenFull("loop1"));
        assertEquals(Aperture.WhenFull.REFUSE, t.whenFull("loop2"));
        assertEquals(Aperture.WhenFull.REFUSE, t.whenFull("nvme0n1"), "the default");
        String m = assertThrows(java.io.IOException.class, () -> Topology.parse("# x\nbar loop0 1M evict\n", "topo")).getMessage();
        assertTrue(m.contains("topo:2") && m.contains("'evict'") && m.contains("refuse (the default) or reclaim"), m);
        m = assertThrows(java.io.IOException.class, () -> Topology.parse("bar loop0\n", "topo")).getMessage();
        assertTrue(m.contains("topo:1") && m.contains("bar NAME SIZE [refuse|reclaim]"), m);
        m = assertThrows(java.io.IOException.class, () -> Topology.parse("no-p2p a b c\n", "topo")).getMessage();
        assertTrue(m.contains("topo:1") && m.contains("no-p2p A B"), m);
    }
}
