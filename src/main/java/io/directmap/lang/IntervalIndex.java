package io.directmap.lang;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * Half-open intervals [start, end) with a value each, found by the ranges they overlap (the
 * role of Linux's lib/interval_tree for mmu notifiers and rmap). The four places that look up
 * ranges (the file system's mapping tracker, the block devices' peer mappings, an importer's IOMMU
 * table, a vma's notifiers) share this one.
 *
 * <p>Intervals are kept by start; an overlap query scans the starts in [start - longest, end),
 * where longest is the length of the longest interval held <em>now</em>: the lengths are counted
 * in a sorted multiset, so removing a long interval shrinks the bound again and the searches do not
 * degrade to scanning everything (as a bound that only ever grows did).
 *
 * <p>Not thread-safe: each user guards it with the lock it already had.
 */
public final class IntervalIndex<T> {
    /** One interval and its value. */
    public record Interval<T>(long start, long end, T value) {}

    private final TreeMap<Long, List<Interval<T>>> byStart = new TreeMap<>();
    /** How many intervals have each length: the last key bounds how far before a query they may start. */
    private final TreeMap<Long, Integer> lengths = new TreeMap<>();
    private int size;
    /** Intervals looked at by queries since the last reset: for tests that the search stays narrow. */
    long visited;

    /** Adds value over [start, end); the same value may be added more than once. */
    public void add(long start, long end, T value) {
        if (end < start) throw new IllegalArgumentException("interval [" + start + ", " + end + ") ends before it starts");
        byStart.computeIfAbsent(start, s -> new ArrayList<>(1)).add(new Interval<>(start, end, value));
        lengths.merge(length(start, end), 1, Integer::sum);
        size++;
    }

    /** Removes one interval [start, end) whose value equals value; false if there was none. */
    public boolean remove(long start, long end, T value) {
        List<Interval<T>> at = byStart.get(start);
        if (at == null) return false;
        for (int i = 0; i < at.size(); i++) {
            Interval<T> iv = at.get(i);
            if (iv.end() == end && java.util.Objects.equals(iv.value(), value)) {
                at.remove(i);
                if (at.isEmpty()) byStart.remove(start);
                forget(iv);
                return true;
            }
        }
        return false;
    }

    /** Removes every interval that starts at start; returns them. */
    public List<Interval<T>> removeAt(long start) {
        List<Interval<T>> at = byStart.remove(start);
        if (at == null) return List.of();
        at.forEach(this::forget);
        return at;
    }

    private void forget(Interval<T> iv) {
        lengths.computeIfPresent(length(iv.start(), iv.end()), (k, n) -> n == 1 ? null : n - 1);
        size--;
    }

    /** The values of the intervals that overlap [start, end), by start. */
    public List<T> overlapping(long start, long end) {
        List<T> out = new ArrayList<>();
        forEachOverlapping(start, end, iv -> out.add(iv.value()));
        return out;
    }

    /** Gives each interval that overlaps [start, end) to action, by start. */
    public void forEachOverlapping(long start, long end, Consumer<Interval<T>> action) {
        if (byStart.isEmpty()) return;
        long longest = lengths.lastKey();
        long from = start < Long.MIN_VALUE + longest ? Long.MIN_VALUE : start - longest;
        if (from > end) return;
        for (List<Interval<T>> at : byStart.subMap(from, true, end, false).values()) {
            for (Interval<T> iv : at) {
                visited++;
                if (iv.end() > start) action.accept(iv);
            }
        }
    }

    /** The values of the intervals that start in [from, to), by start. */
    public List<T> startingIn(long from, long to) {
        List<T> out = new ArrayList<>();
        for (List<Interval<T>> at : byStart.subMap(from, true, to, false).values()) {
            for (Interval<T> iv : at) out.add(iv.value());
        }
        return out;
    }

    /**
     * The value of the first interval with the greatest start at or below point, if that interval
     * contains point; else null (a sorted map's floor lookup, for users that keep one interval per
     * start). Allocates nothing.
     */
    public T floorContaining(long point) {
        Map.Entry<Long, List<Interval<T>>> f = byStart.floorEntry(point);
        if (f == null) return null;
        Interval<T> iv = f.getValue().getFirst();
        return point < iv.end() ? iv.value() : null;
    }

    /** Every value, by start. */
    public List<T> all() {
        List<T> out = new ArrayList<>(size);
        for (List<Interval<T>> at : byStart.values()) for (Interval<T> iv : at) out.add(iv.value());
        return out;
    }

    public int size() { return size; }

    public boolean isEmpty() { return size == 0; }

    public void clear() {
        byStart.clear();
        lengths.clear();
        size = 0;
    }

    /** end - start, saturated: an interval to Long.MAX_VALUE from a negative start is as long as can be. */
    private static long length(long start, long end) {
        long n = end - start;
        return n < 0 ? Long.MAX_VALUE : n;
    }
}
