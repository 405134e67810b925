package io.directmap.lang;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class XorshiftTest {
    @Test
    void seedZeroGivesMarsagliasXorshift64FromStateOne() {
        // State 0 * 2^64/phi + 1 = 1; xorshift64 (13, 7, 17) from 1, computed apart from this class.
        Xorshift g = Xorshift.seeded(0);
        assertEquals(1082269761L, g.nextLong());
        assertEquals(1152992998833853505L, g.nextLong());
        assertEquals(-7269227409276787159L, g.nextLong());
    }

    @Test
    void theSameSeedGivesTheSameSequenceAndAnotherSeedAnother() {
        Xorshift a = Xorshift.seeded(42), b = Xorshift.seeded(42), c = Xorshift.seeded(43);
        boolean differs = false;
        for (int i = 0; i < 1000; i++) {
            long x = a.nextLong();
            assertEquals(x, b.nextLong());
            differs |= x != c.nextLong();
        }
        assertTrue(differs);
    }

    @Test
    void fillWritesTheSequenceLittleEndianAndEndsWithTheLastLongsLowByte() {
        byte[] filled = new byte[8 * 3 + 5];
        Xorshift.seeded(7).fill(filled);
        Xorshift g = Xorshift.seeded(7);
        ByteBuffer expected = ByteBuffer.allocate(filled.length).order(ByteOrder.LITTLE_ENDIAN);
        long last = 0;
        for (int i = 0; i < 3; i++) expected.putLong(last = g.nextLong());
        while (expected.hasRemaining()) expected.put((byte) last);
        assertArrayEquals(expected.array(), filled);

        byte[] shortOnly = new byte[5];
        Xorshift.seeded(0).fill(shortOnly);
        assertArrayEquals(new byte[] {1, 1, 1, 1, 1}, shortOnly, "no whole long: the low byte of the state (1 for seed 0)");
    }

    @Test
    void fillShapesEachLongButNotTheTail() {
        byte[] text = new byte[64 + 3];
        Xorshift.seeded(3).fill(java.lang.foreign.MemorySegment.ofArray(text), 0x0707070707070707L, 0x6161616161616161L);
        for (int i = 0; i < 64; i++) assertTrue("aceg".indexOf(text[i]) >= 0, "byte " + i + " is " + text[i]);
        Xorshift g = Xorshift.seeded(3);
        long last = 0;
        for (int i = 0; i < 8; i++) last = g.nextLong();
        assertEquals((byte) last, text[64]);
    }

    @Test
    void choicesStayInTheirBound() {
        Xorshift g = Xorshift.seeded(1);
        for (int bound : new int[] {1, 2, 3, 7, 8, 10, 1000, 1 << 30, Integer.MAX_VALUE}) {
            for (int i = 0; i < 10_000; i++) {
                int x = g.nextInt(bound);
                assertTrue(x >= 0 && x < bound, x + " outside [0, " + bound + ")");
            }
        }
        for (long bound : new long[] {1, 5, 1L << 40, (1L << 62) + 1, Long.MAX_VALUE}) {
            for (int i = 0; i < 10_000; i++) {
                long x = g.nextLong(bound);
                assertTrue(x >= 0 && x < bound, x + " outside [0, " + bound + ")");
            }
        }
        assertThrows(IllegalArgumentException.class, () -> g.nextInt(0));
        assertThrows(IllegalArgumentException.class, () -> g.nextLong(-1));
    }

    @Test
    void choicesAreUniform() {
        Xorshift g = Xorshift.seeded(2);
        int[] three = new int[3], eight = new int[8];
        for (int i = 0; i < 30_000; i++) three[g.nextInt(3)]++;
        for (int i = 0; i < 32_000; i++) eight[g.nextInt(8)]++;
        for (int n : three) assertTrue(Math.abs(n - 10_000) < 600, "nextInt(3) counts " + java.util.Arrays.toString(three));
        for (int n : eight) assertTrue(Math.abs(n - 4_000) < 400, "nextInt(8) counts " + java.util.Arrays.toString(eight));
        // 2^63 is 4/3 of this bound: without the rejection, [0, 2^61) would come up half the time, not a third.
        long bound = 3L << 61;
        int low = 0, trues = 0;
        for (int i = 0; i < 30_000; i++) {
            if (g.nextLong(bound) < (1L << 61)) low++;
            if (g.nextBoolean()) trues++;
        }
        assertTrue(Math.abs(low - 10_000) < 600, low + " of 30000 below 2^61");
        assertTrue(Math.abs(trues - 15_000) < 600, trues + " of 30000 true");
    }

    @Test
    void shuffleIsADeterministicUniformPermutation() {
        List<Integer> a = new ArrayList<>(List.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)), b = new ArrayList<>(a);
        Xorshift.seeded(5).shuffle(a);
        Xorshift.seeded(5).shuffle(b);
        assertEquals(a, b, "the same seed, the same order");
        assertNotEquals(List.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), a);
        assertEquals(List.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), a.stream().sorted().toList(), "a permutation: nothing lost or doubled");

        Map<List<Integer>, Integer> seen = new HashMap<>();
        Xorshift g = Xorshift.seeded(6);
        for (int i = 0; i < 24_000; i++) {
            List<Integer> l = new ArrayList<>(List.of(1, 2, 3, 4));
            g.shuffle(l);
            seen.merge(l, 1, Integer::sum);
        }
        assertEquals(24, seen.size(), "every order of 4 comes up");
        for (int n : seen.values()) assertTrue(Math.abs(n - 1000) < 200, "counts " + seen);
        List<Integer> empty = new ArrayList<>(), one = new ArrayList<>(List.of(9));
        g.shuffle(empty);
        g.shuffle(one);
        assertEquals(List.of(9), one);
    }

    @Test
    void stateZeroIsRefusedAndTheOneSeedThatReachesItGivesZeros() {
        assertThrows(IllegalArgumentException.class, () -> Xorshift.fromState(0));
        Xorshift z = Xorshift.seeded(1018231460777725123L);
        assertEquals(0, z.nextLong() | z.nextLong());
        assertEquals(Xorshift.fromState(12345).nextLong(), Xorshift.fromState(12345).nextLong());
    }

    @Test
    void aNewSeedIsShortEnoughToType() {
        for (int i = 0; i < 100; i++) {
            long s = Xorshift.newSeed();
            assertTrue(s >= 0 && s <= 0xFFFFFFFFL, Long.toString(s));
        }
    }
}
