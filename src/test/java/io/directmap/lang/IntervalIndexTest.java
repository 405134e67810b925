package io.directmap.lang;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.lang.Xorshift;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class IntervalIndexTest {
    @Test
    void findsExactlyTheOverlappingIntervals() {
        IntervalIndex<String> ix = new IntervalIndex<>();
        ix.add(0, 10, "a");
        ix.add(5, 20, "b");
        ix.add(20, 30, "c");
        ix.add(100, 200, "d");
        assertEquals(List.of("a", "b"), ix.overlapping(9, 10));
        assertEquals(List.of("b", "c"), ix.overlapping(10, 21));
        assertEquals(List.of(), ix.overlapping(30, 100), "half-open: neither end touches");
        assertEquals(List.of("d"), ix.overlapping(150, Long.MAX_VALUE));
        assertEquals(List.of("a", "b", "c", "d"), ix.overlapping(0, Long.MAX_VALUE));
        assertEquals(List.of("b", "c"), ix.startingIn(5, 100));
    }

    @Test
    void removeTakesOneEqualIntervalAndKeepsTheRest() {
        IntervalIndex<String> ix = new IntervalIndex<>();
        ix.add(0, 10, "a");
        ix.add(0, 10, "a");
        ix.add(0, 5, "b");
        assertTrue(ix.remove(0, 10, "a"));
        assertEquals(List.of("a", "b"), ix.overlapping(0, 1));
        assertFalse(ix.remove(0, 9, "a"), "the end must match too");
        assertTrue(ix.remove(0, 10, "a"));
        assertTrue(ix.remove(0, 5, "b"));
        assertTrue(ix.isEmpty());
        assertEquals(List.of(), ix.overlapping(0, Long.MAX_VALUE));
    }

    @Test
    void anIntervalToTheEndOfEverythingIsFound() {
        IntervalIndex<String> ix = new IntervalIndex<>();
        ix.add(0, Long.MAX_VALUE, "all");
        ix.add(Long.MAX_VALUE - 1, Long.MAX_VALUE, "last");
        assertEquals(List.of("all", "last"), ix.overlapping(Long.MAX_VALUE - 1, Long.MAX_VALUE));
        assertEquals(List.of("all"), ix.overlapping(1L << 40, (1L << 40) + 1));
    }

    @Test
    void removingALongIntervalNarrowsTheSearchAgain() {
        IntervalIndex<Integer> ix = new IntervalIndex<>();
        ix.add(0, 1L << 40, -1);
        for (int i = 0; i < 10_000; i++) ix.add(i * 100L, i * 100L + 10, i);
        assertTrue(ix.remove(0, 1L << 40, -1));

        ix.visited = 0;
        assertEquals(List.of(9_000), ix.overlapping(900_000, 900_005));
        assertTrue(ix.visited <= 2, "a query after the long interval went looks at the nearby starts only, looked at "
                + ix.visited);
    }

    @Test
    void agreesWithABruteForceScan() {
        Xorshift r = Xorshift.seeded(9);
        IntervalIndex<Integer> ix = new IntervalIndex<>();
        List<long[]> live = new ArrayList<>();
        for (int step = 0; step < 5_000; step++) {
            if (live.isEmpty() || r.nextInt(3) > 0) {
                long s = r.nextInt(10_000), e = s + r.nextInt(r.nextInt(10) == 0 ? 5_000 : 50);
                live.add(new long[] {s, e, step});
                ix.add(s, e, step);
            } else {
                long[] x = live.remove(r.nextInt(live.size()));
                assertTrue(ix.remove(x[0], x[1], (int) x[2]));
            }
            long qs = r.nextInt(10_000), qe = qs + r.nextInt(100);
            List<Integer> want = new ArrayList<>();
            for (long[] x : live) if (x[0] < qe && x[1] > qs) want.add((int) x[2]);
            List<Integer> got = new ArrayList<>(ix.overlapping(qs, qe));
            want.sort(null);
            got.sort(null);
            assertEquals(want, got, "query [" + qs + ", " + qe + ")");
        }
        assertEquals(live.size(), ix.size());
    }
}
