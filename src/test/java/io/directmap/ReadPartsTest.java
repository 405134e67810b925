package io.directmap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.fs.FsReason;
import io.directmap.lang.Xorshift;
import io.directmap.mm.Refusal;
import io.directmap.mm.Segment;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A facade read's parts come from the segments its bytes were read through: cut to the bytes asked
 * for, in order, with no gap (segments that leave one are a broken contract, named as such), their
 * direct and fallback lengths summing to the read's counts; and a read keeps its parts after the
 * file changes and is read again.
 */
class ReadPartsTest {
    static final long PAGE = 4096;

    @TempDir Path dir;

    @Test
    void partsAreTheReadsSegmentsCutToTheBytesAskedFor() {
        List<Segment> segments = List.of(
                new Segment.Fallback(0, 4 * PAGE, new Refusal(FsReason.PAGE_CACHED, "4 cached pages")),
                new Segment.Fallback(4 * PAGE, 8 * PAGE, new Refusal(FsReason.PAGE_DIRTY, "4 dirty pages")));
        List<Part> parts = Internals.parts(segments, 100, 5 * PAGE + 7);
        assertEquals(2, parts.size(), "parts " + parts);
        var a = assertInstanceOf(Part.Fallback.class, parts.get(0));
        var b = assertInstanceOf(Part.Fallback.class, parts.get(1));
        assertEquals(List.of(100L, 4 * PAGE, 4 * PAGE, 5 * PAGE + 7), List.of(a.start(), a.end(), b.start(), b.end()));
        assertEquals(List.of("page_cached", "page_dirty"), List.of(a.reason(), b.reason()));
        assertEquals(RefusedBy.FILESYSTEM, a.refusedBy());
        assertEquals("4 cached pages", a.detail());

        assertEquals(List.of(new Part.Fallback(5 * PAGE, 6 * PAGE, RefusedBy.FILESYSTEM, "page_dirty",
                        FsReason.PAGE_DIRTY.summary(), "4 dirty pages")),
                Internals.parts(segments, 5 * PAGE, 6 * PAGE), "a segment that starts and ends outside the bytes asked for is cut to them");
    }

    @Test
    void segmentsThatLeaveAGapAreABrokenContractNotAPart() {
        Refusal r = new Refusal(FsReason.PAGE_CACHED, "");
        List<Segment> gap = List.of(new Segment.Fallback(0, PAGE, r), new Segment.Fallback(2 * PAGE, 3 * PAGE, r));
        String m = assertThrows(IllegalStateException.class, () -> Internals.parts(gap, 0, 3 * PAGE)).getMessage();
        assertTrue(m.contains("nothing covers [" + PAGE + ", " + 2 * PAGE + ")"), m);
        String shortOf = assertThrows(IllegalStateException.class,
                () -> Internals.parts(gap.subList(0, 1), 0, 2 * PAGE)).getMessage();
        assertTrue(shortOf.contains("nothing covers [" + PAGE + ", " + 2 * PAGE + ")"), shortOf);
        List<Segment> overlap = List.of(new Segment.Fallback(0, 2 * PAGE, r), new Segment.Fallback(PAGE, 3 * PAGE, r));
        String o = assertThrows(IllegalStateException.class, () -> Internals.parts(overlap, 0, 3 * PAGE)).getMessage();
        assertTrue(o.contains("go back to " + PAGE), o);
    }

    @Test
    void aReadKeepsItsPartsAfterTheFileChangesAndIsReadAgain() throws IOException {
        int size = (int) (64 * PAGE);
        byte[] first = new byte[size], second = new byte[size];
        Xorshift.seeded(9).fill(first);
        Xorshift.seeded(10).fill(second);
        Path file = dir.resolve("data.bin");
        Files.write(file, first);
        try (DirectMap dm = DirectMap.open();
             Device gpu = dm.device(DeviceKind.GPU);
             FileMapping m = gpu.map(file, MapOptions.defaults().window(16 * PAGE))) {
            try (Read r1 = m.read(0, size)) {
                assertArrayEquals(first, r1.memory().toArray(ValueLayout.JAVA_BYTE));
                assertPartsMatch(r1);
                List<Part> before = List.copyOf(r1.parts());

                Files.write(file, second);
                try (Read r2 = m.read(16 * PAGE, 32 * PAGE)) {
                    assertArrayEquals(Arrays.copyOfRange(second, (int) (16 * PAGE), (int) (48 * PAGE)),
                            r2.memory().toArray(ValueLayout.JAVA_BYTE), "the second read has the new bytes");
                    assertPartsMatch(r2);
                }
                assertEquals(before, r1.parts(), "the first read still says how its bytes came");
            }
        }
    }

    /** Parts cover [offset, offset + bytes) in order with no gap; direct and fallback lengths are the read's counts. */
    private static void assertPartsMatch(Read r) {
        long at = r.offset(), direct = 0, fallback = 0;
        for (Part p : r.parts()) {
            assertEquals(at, p.start(), r + ": a gap or an overlap in " + r.parts());
            assertTrue(p.end() > p.start(), r + ": an empty part in " + r.parts());
            switch (p) {
                case Part.Direct d -> direct += d.length();
                case Part.Fallback f -> fallback += f.length();
            }
            at = p.end();
        }
        assertEquals(r.offset() + r.bytes(), at, r + ": parts stop short: " + r.parts());
        assertEquals(r.directBytes(), direct, r + ": direct bytes in " + r.parts());
        assertEquals(r.fallbackBytes(), fallback, r + ": fallback bytes in " + r.parts());
    }
}
