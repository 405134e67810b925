package io.directmap.fs;

import io.directmap.mm.Segment;
import io.directmap.sys.PageCacheAdvice;
import io.directmap.sys.SysException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The page-cache pages that only this file system's own fallback brought in, so that a range
 * which was direct goes direct again once it is faulted anew, instead of being refused as cached
 * for the rest of the run (the policy refuses clean cached pages).
 *
 * <p>When a decision sends a range through the page cache for a reason other than its pages
 * being there (a change in progress, a writer that could not be held back, a block device's
 * refusal, all-or-nothing), the device's copy faults those pages in, and the kernel's mmap
 * read-around brings in up to read_ahead_kb around each fault as well (128 KiB by default; its
 * async readahead as much again past the end). So the pages of the segment and of
 * {@value #READ_AROUND} either side of it that were <i>not</i> cached when it was decided
 * (cachestat, at the decision) are recorded. Before a later decision over a recorded range, when
 * nothing holds it back, they are dropped (posix_fadvise DONTNEED: clean pages only; a page that
 * a writer dirtied meanwhile stays, and is refused as dirty). Pages that were cached before the
 * decision, or that the learning policy chose to read through the cache (cache_faster), are
 * never dropped. A page another process read in between the decision and the drop is dropped
 * too (it is clean, so nothing is lost but its copy).
 */
final class OwnCachePages {
    /** How far around a fallback segment the kernel's readahead may have read (1 MiB, 8x the default). */
    static final long READ_AROUND = 1L << 20;

    /** Recorded ranges by inode (dev/ino), each a sorted list of disjoint [start, end); guarded by the list. */
    private final Map<String, List<long[]>> byFile = new ConcurrentHashMap<>();

    /** After a decision: records what the fallback segments will bring into the cache that was not there. */
    void decided(OpenFile file, List<Segment> segments) {
        long size;
        try {
            size = file.size();
        } catch (SysException e) {
            return;
        }
        // The segments with their read-around, joined where they touch: one cachestat walk each.
        List<long[]> around = new ArrayList<>();
        for (Segment s : segments) {
            if (!(s instanceof Segment.Fallback f) || f.refusal().reason() == FsReason.CACHE_FASTER) continue;
            long from = Math.max(0, f.start() - READ_AROUND), to = Math.min(roundUpPage(size), f.end() + READ_AROUND);
            if (from >= to) continue;
            if (!around.isEmpty() && around.getLast()[1] >= from) {
                around.getLast()[1] = Math.max(around.getLast()[1], to);
            } else {
                around.add(new long[] {from, to});
            }
        }
        for (long[] a : around) {
            try {
                for (PageCacheRuns.Run r : PageCacheRuns.of(file.handle(), a[0], a[1])) {
                    if (!r.cached()) add(file.key(), r.start(), r.end());
                }
            } catch (SysException e) {
                // Unknown cache state: record nothing, so nothing is dropped.
            }
        }
    }

    /** Before a decision over [start, end) that nothing holds back: drops the clean pages recorded there. */
    void dropBefore(OpenFile file, long start, long end) {
        List<long[]> ranges = byFile.get(file.key());
        if (ranges == null) return;
        List<long[]> drop = new ArrayList<>();
        synchronized (ranges) {
            List<long[]> keep = new ArrayList<>();
            for (long[] r : ranges) {
                if (r[1] <= start || end <= r[0]) {
                    keep.add(r);
                    continue;
                }
                drop.add(new long[] {Math.max(r[0], start), Math.min(r[1], end)});
                if (r[0] < start) keep.add(new long[] {r[0], start});
                if (end < r[1]) keep.add(new long[] {end, r[1]});
            }
            ranges.clear();
            ranges.addAll(keep);
        }
        for (long[] r : drop) {
            try {
                PageCacheAdvice.dropCache(file.handle(), r[0], r[1] - r[0]);
            } catch (SysException e) {
                // Kept in the cache: the range goes through it, as before.
            }
        }
    }

    /** How many bytes are recorded for file now (tests). */
    long recordedBytes(OpenFile file) {
        List<long[]> ranges = byFile.get(file.key());
        if (ranges == null) return 0;
        synchronized (ranges) {
            long n = 0;
            for (long[] r : ranges) n += r[1] - r[0];
            return n;
        }
    }

    private void add(String key, long start, long end) {
        List<long[]> ranges = byFile.computeIfAbsent(key, k -> new ArrayList<>());
        synchronized (ranges) {
            List<long[]> out = new ArrayList<>(ranges.size() + 1);
            long s = start, e = end;
            boolean placed = false;
            for (long[] r : ranges) {
                if (r[1] < s) {
                    out.add(r);
                } else if (e < r[0]) {
                    if (!placed) {
                        out.add(new long[] {s, e});
                        placed = true;
                    }
                    out.add(r);
                } else {
                    s = Math.min(s, r[0]);
                    e = Math.max(e, r[1]);
                }
            }
            if (!placed) out.add(new long[] {s, e});
            ranges.clear();
            ranges.addAll(out);
        }
    }

    private static long roundUpPage(long v) {
        long p = io.directmap.sys.Process.PAGE_SIZE;
        return (v + p - 1) / p * p;
    }
}
