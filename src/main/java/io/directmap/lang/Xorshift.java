package io.directmap.lang;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The one seeded generator of DirectMap's tools: the data Workloads writes, the torture's block
 * stamps and choices, the bench's order. Marsaglia's xorshift64 (13, 7, 17), which those files
 * have always been filled with: the same seed gives the same bytes as before this class existed,
 * so a seed written in a report or a test still names the same file.
 *
 * <p>Deterministic, fast and not for secrets. Not thread-safe: give each thread its own, seeded
 * from its own seed. Choices ({@link #nextInt(int)}, {@link #nextLong(long)}, {@link #nextBoolean()})
 * take the top bits (xorshift's low bits are its weakest) and are unbiased (rejection, as
 * java.util.Random does).
 */
public final class Xorshift {
    private static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** 2^64 / phi: spreads nearby seeds (0, 1, 2, ...) over the state space. */
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    private long x;

    private Xorshift(long state) {
        this.x = state;
    }

    /**
     * The generator for a seed (any long). Its state is seed * 2^64/phi + 1, Workloads' mixing; the
     * one seed that makes that 0 (1018231460777725123) gives only zeros, as it always has.
     */
    public static Xorshift seeded(long seed) {
        return new Xorshift(seed * GOLDEN + 1);
    }

    /**
     * The generator whose state is exactly state, for data whose state is derived elsewhere (the
     * torture's stamp of block i at version v). state must not be 0, which xorshift never leaves.
     */
    public static Xorshift fromState(long state) {
        if (state == 0) throw new IllegalArgumentException("xorshift's state must not be 0: it would give only zeros");
        return new Xorshift(state);
    }

    /**
     * A seed for a run that was given none, to be printed so the run can be repeated: 32 bits, short
     * enough to type back. It comes from ThreadLocalRandom; only the seed is unseeded.
     */
    public static long newSeed() {
        return ThreadLocalRandom.current().nextLong() & 0xFFFFFFFFL;
    }

    /** The next 64 bits. */
    public long nextLong() {
        long s = x;
        s ^= s << 13;
        s ^= s >>> 7;
        s ^= s << 17;
        x = s;
        return s;
    }

    /** Uniform in [0, bound); bound must be positive. */
    public int nextInt(int bound) {
        if (bound <= 0) throw new IllegalArgumentException("bound must be positive, not " + bound);
        return (int) nextLong((long) bound);
    }

    /** Uniform in [0, bound); bound must be positive. */
    public long nextLong(long bound) {
        if (bound <= 0) throw new IllegalArgumentException("bound must be positive, not " + bound);
        long m = bound - 1;
        if ((bound & m) == 0) return (nextLong() >>> 1) >>> (63 - Long.numberOfTrailingZeros(bound));   // a power of two: the top bits
        // The top 63 bits modulo bound; a draw from the last, partial stretch of [0, 2^63) would favour small values: draw again.
        long u = nextLong() >>> 1, r;
        while (u - (r = u % bound) + m < 0) u = nextLong() >>> 1;
        return r;
    }

    /** true or false, each half the time (the top bit). */
    public boolean nextBoolean() {
        return nextLong() < 0;
    }

    /** Puts the list in a uniformly random order, in place (Fisher-Yates, from the end). */
    public <T> void shuffle(List<T> list) {
        for (int i = list.size() - 1; i > 0; i--) {
            int j = nextInt(i + 1);
            list.set(j, list.set(i, list.get(j)));
        }
    }

    /** Fills target with the next longs, little-endian; see {@link #fill(MemorySegment, long, long)}. */
    public void fill(MemorySegment target) {
        fill(target, -1L, 0L);
    }

    /**
     * Fills target with the next longs, little-endian, each as {@code (x & keep) | set}: keep -1 and
     * set 0 for incompressible data, a narrower keep for text-like data that compresses. A tail
     * shorter than a long is the low byte of the last long (unmasked), repeated: how Workloads has
     * always ended a file, kept so that a recorded seed gives the same bytes.
     */
    public void fill(MemorySegment target, long keep, long set) {
        long size = target.byteSize(), at = 0;
        for (; at + 8 <= size; at += 8) target.set(LONG_LE, at, (nextLong() & keep) | set);
        if (at < size) target.asSlice(at).fill((byte) x);
    }

    /** {@link #fill(MemorySegment)} of the array. */
    public void fill(byte[] target) {
        fill(MemorySegment.ofArray(target));
    }
}
