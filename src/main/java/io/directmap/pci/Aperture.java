package io.directmap.pci;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * One exporting device's BAR aperture as a resource: a fixed number of bytes of bus address space
 * in which direct mappings take windows (aligned, never overlapping) and give them back. Free
 * space that touches coalesces at once, so everything given back is one free window again.
 *
 * <p>It knows nothing of what a window reaches: the exporter (a block device, a software device's
 * memory) keeps a tag with each window, its own offset behind it, and turns a window into a bus
 * address by adding its endpoint's busBase. Each window also carries the time it was last used, so
 * an exporter that reclaims can take the least recently used one back.
 *
 * <p>Allocation is first fit in address order; where no free window holds the whole request, the
 * largest one is handed out in part (the caller asks again for the rest), as the BAR counter did
 * before. Thread-safe; every call is O(windows), which is small (one per live direct segment).
 */
public final class Aperture {
    /**
     * A window: [offset, offset + length) of the aperture, granted to one direct mapping.
     *
     * @param offset where it starts in the aperture (its bus address less the endpoint's busBase)
     * @param length how many bytes it spans
     * @param tag    the exporter's: what the window reaches (its own offset behind it)
     */
    public record Window(long offset, long length, long tag) {
        /** {@return the first offset past it: offset + length} */
        public long end() { return offset + length; }
    }

    /**
     * What an exporter does when a direct mapping finds its aperture full (the topology's
     * {@code bar NAME SIZE [refuse|reclaim]}).
     */
    public enum WhenFull {
        /**
         * The default: refuse (the importer falls back to the page cache for that range). The
         * proposal's own answer ("running out of BAR space" is a reason to say no); a fallback costs
         * one copy through host memory, while a reclaim costs another importer its live mapping (it
         * stops its DMA, lets go and faults again), and two importers whose working sets do not fit
         * together would take each other's windows at every fault.
         */
        REFUSE,
        /**
         * Take back the least recently used windows by invalidating their mappings (the owners let go
         * first), then grant: for one long-running importer whose working set moves through a file
         * bigger than the aperture.
         */
        RECLAIM;

        /** {@return the word as the topology's bar rule and dmap stats write it: "refuse" or "reclaim"} */
        public String code() { return name().toLowerCase(java.util.Locale.ROOT); }
    }

    /**
     * What the aperture holds now: the numbers dmap stats shows.
     *
     * @param sizeBytes        its size
     * @param usedBytes        bytes granted to windows
     * @param freeBytes        bytes free
     * @param largestFreeBytes the largest free window: the most one request gets in one piece
     * @param freeWindows      how many free windows the free bytes are split into (the fragmentation)
     * @param windows          windows granted now
     */
    public record Usage(long sizeBytes, long usedBytes, long freeBytes, long largestFreeBytes, int freeWindows, int windows) {}

    private final String name;
    private final long size;
    private final TreeMap<Long, Long> free = new TreeMap<>();      // start -> end, never touching
    private final TreeMap<Long, Held> held = new TreeMap<>();      // start -> window
    private long used;
    private long clock;                                            // use order; a window's stamp is its last use
    private final AtomicBoolean reclaiming = new AtomicBoolean();  // one reclaim at a time
    private final AtomicLong reclaims = new AtomicLong();

    private static final class Held {
        final Window window;
        long lastUse;

        Held(Window window, long lastUse) {
            this.window = window;
            this.lastUse = lastUse;
        }
    }

    /**
     * An aperture with every byte free.
     *
     * @param name what the aperture belongs to, for messages ("loop0")
     * @param sizeBytes its size; 0 makes every allocation fail
     * @throws IllegalArgumentException when sizeBytes is negative
     */
    public Aperture(String name, long sizeBytes) {
        if (sizeBytes < 0) throw new IllegalArgumentException(name + ": aperture of " + sizeBytes + " bytes; give 0 or more");
        this.name = name;
        this.size = sizeBytes;
        if (sizeBytes > 0) free.put(0L, sizeBytes);   // 0 (bar NAME 0): no direct mapping at all
    }

    /** {@return what the aperture belongs to ("loop0")} */
    public String name() { return name; }

    /** {@return its size in bytes} */
    public long sizeBytes() { return size; }

    /**
     * A window of up to length bytes starting on a multiple of align, its length a multiple of
     * align, tagged with tag; empty when no free window has align bytes from an aligned start.
     * align is a power of two (a logical block size).
     *
     * @param length how many bytes the caller wants; it may get fewer and ask again for the rest
     * @param align  the alignment of the window's start and length, a power of two
     * @param tag    the exporter's tag, kept with the window
     * @return the window granted, or empty when the aperture has no aligned room
     * @throws IllegalArgumentException when length is not positive or align is not a power of two
     */
    public synchronized Optional<Window> allocateUpTo(long length, long align, long tag) {
        if (length <= 0) throw new IllegalArgumentException(name + ": window of " + length + " bytes asked; give at least 1 byte");
        if (align <= 0 || Long.bitCount(align) != 1) {
            throw new IllegalArgumentException(name + ": alignment " + align + " is not a power of two");
        }
        long want = (length + align - 1) & -align;
        long bestStart = -1, bestLength = 0;
        for (Map.Entry<Long, Long> f : free.entrySet()) {
            long start = (f.getKey() + align - 1) & -align;
            long room = (f.getValue() - start) & -align;
            if (room >= want) {
                bestStart = start;
                bestLength = want;
                break;
            }
            if (room > bestLength) {
                bestStart = start;
                bestLength = room;
            }
        }
        if (bestLength < align) return Optional.empty();
        Window w = new Window(bestStart, Math.min(bestLength, want), tag);
        take(w);
        return Optional.of(w);
    }

    private void take(Window w) {
        Map.Entry<Long, Long> f = free.floorEntry(w.offset());
        if (f == null || f.getValue() < w.end()) throw new IllegalStateException(name + ": " + w + " is not free");
        free.remove(f.getKey());
        if (f.getKey() < w.offset()) free.put(f.getKey(), w.offset());
        if (w.end() < f.getValue()) free.put(w.end(), f.getValue());
        held.put(w.offset(), new Held(w, ++clock));
        used += w.length();
    }

    /**
     * Gives back [offset, offset + length), which must be exactly one window or several adjacent
     * ones (a caller that joined adjacent grants gives them back together). A range that is not
     * held so is a bug in the caller (a double free): IllegalStateException naming it, and
     * nothing is freed.
     *
     * @param offset where the range starts: the start of a window
     * @param length how many bytes: to the end of a window
     * @throws IllegalStateException when the range is not held as whole windows
     */
    public synchronized void free(long offset, long length) {
        long end = offset + length;
        List<Long> starts = new ArrayList<>();
        long at = offset;
        while (at < end) {
            Held h = held.get(at);
            if (h == null || h.window.end() > end) {
                throw new IllegalStateException(name + ": [" + offset + ", " + end + ") of the aperture is not held as whole windows"
                        + " (no window " + (h == null ? "starts at " + at : h.window + " ends past it") + "): freed twice, or never allocated");
            }
            starts.add(at);
            at = h.window.end();
        }
        for (long s : starts) {
            Window w = held.remove(s).window;
            used -= w.length();
            giveBack(w.offset(), w.end());
        }
    }

    private void giveBack(long start, long end) {
        Map.Entry<Long, Long> before = free.floorEntry(start);
        if (before != null && before.getValue() == start) {
            start = before.getKey();
            free.remove(before.getKey());
        }
        Long after = free.get(end);
        if (after != null) {
            free.remove(end);
            end = after;
        }
        free.put(start, end);
    }

    /** Marks the window at offset as just used (it moves to the back of the reclaim order). */
    synchronized void touch(long offset) {
        Held h = held.get(offset);
        if (h != null) h.lastUse = ++clock;
    }

    /** {@return the windows held now, least recently used first: the order a reclaiming exporter takes them back in} */
    public synchronized List<Window> leastRecentlyUsed() {
        return held.values().stream().sorted(Comparator.comparingLong(h -> h.lastUse)).map(h -> h.window).toList();
    }

    /** How long a reclaim waits for the holder of a window to let go before it refuses instead. */
    public static final long RECLAIM_WAIT_MS = 1_000;

    /** Who holds a window, as {@link #reclaim} asks it to let go. */
    public interface Holder {
        /** {@return who holds it, for messages ("device 0..1048576", "mapping 3 of gpu1's memory")} */
        String describe();

        /**
         * Takes the window back through its exporter's own invalidation path: returns when the
         * importers have let go and the window is free.
         *
         * @param detail why, for the invalidation's report
         */
        void takeBack(String detail);
    }

    /**
     * What a reclaim gave.
     *
     * @param window the window it could allocate afterwards, or empty
     * @param why    when empty, why not, to append to the refusal's detail ("; ...")
     */
    public record Reclaimed(Optional<Window> window, String why) {}

    /**
     * The reclaim policy ({@link WhenFull#RECLAIM}): takes back the least recently used windows
     * (granted: nothing calls {@link #touch} on a DMA, so use is the grant),
     * one at a time, through their holders, until allocate gives a window. Windows with no holder
     * yet (mappings still being made: the asking request's earlier windows among them) are passed
     * over.
     *
     * <p>The holder is asked on a thread of its own and waited for at most {@link #RECLAIM_WAIT_MS}:
     * the thread asking may be an importer's fault that already pinned the victim (a binding's
     * fast path pins every window, then faults the next), whose let-go waits for that pin. Then
     * this refuses rather than wait for itself; the let-go finishes once the read unpins, and the
     * next fault finds the room. One reclaim runs per aperture: while it waits, other requests
     * are refused at once instead of each waiting on a read that cannot unpin.
     *
     * @param forWhat  what the room is for, for messages ("a mapping of device offset 4096")
     * @param holderOf the holder of a window, or empty when it has none yet
     * @param allocate the allocation to try again after each window taken back
     * @return the window allocated, or empty and why
     */
    public Reclaimed reclaim(String forWhat, Function<Window, Optional<Holder>> holderOf, Supplier<Optional<Window>> allocate) {
        int passedOver = 0;
        for (Window victim : leastRecentlyUsed()) {
            Optional<Holder> holder = holderOf.apply(victim);
            if (holder.isEmpty()) {
                passedOver++;
                continue;
            }
            if (!reclaiming.compareAndSet(false, true)) {
                return new Reclaimed(Optional.empty(), "; a window is being taken back already and its holder has not let go yet");
            }
            reclaims.incrementAndGet();
            String who = holder.get().describe();
            String detail = name + "'s aperture is full: its least recently granted window (bus offset " + victim.offset() + ", "
                    + victim.length() + " bytes, " + who + ") is taken back for " + forWhat;
            var done = new CompletableFuture<Void>();
            Thread t = Thread.ofPlatform().daemon().name("dmap-reclaim-" + name).unstarted(() -> {
                Throwable failed = null;
                try {
                    holder.get().takeBack(detail);
                } catch (Throwable x) {
                    failed = x;
                }
                // Free for the next reclaim before the waiter wakes.
                reclaiming.set(false);
                if (failed == null) done.complete(null); else done.completeExceptionally(failed);
            });
            try {
                t.start();
            } catch (RuntimeException | Error x) {
                reclaiming.set(false);
                throw x;
            }
            try {
                done.get(RECLAIM_WAIT_MS, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                return new Reclaimed(Optional.empty(), "; the holder of its least recently granted window (" + who + ") did not let go within "
                        + RECLAIM_WAIT_MS + " ms (a DMA in flight through it, perhaps this read's own); it is freed when they do");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return new Reclaimed(Optional.empty(), "; interrupted while its least recently granted window was taken back");
            } catch (ExecutionException e) {
                System.getLogger("io.directmap").log(System.Logger.Level.WARNING, "reclaiming " + detail + " failed", e.getCause());
            }
            Optional<Window> w = allocate.get();
            if (w.isPresent()) return new Reclaimed(w, "");
        }
        return new Reclaimed(Optional.empty(), passedOver == 0 ? "; nothing could be taken back"
                : "; " + passedOver + " windows belong to mappings still being made or pinned (no holder to ask) and were not taken back");
    }

    /** {@return how many windows were taken back from their holders to make room} */
    public long reclaims() { return reclaims.get(); }

    /** {@return the windows held now, in address order} */
    public synchronized List<Window> windows() {
        return held.values().stream().map(h -> h.window).toList();
    }

    /** {@return the free windows now, in address order, as [start, end) pairs (coalesced: none touches another)} */
    public synchronized List<long[]> freeWindows() {
        return free.entrySet().stream().map(e -> new long[] {e.getKey(), e.getValue()}).toList();
    }

    /** {@return bytes granted to windows now} */
    public synchronized long usedBytes() { return used; }

    /** {@return what the aperture holds now, all numbers taken at once} */
    public synchronized Usage usage() {
        long largest = 0;
        for (Map.Entry<Long, Long> f : free.entrySet()) largest = Math.max(largest, f.getValue() - f.getKey());
        return new Usage(size, used, size - used, largest, free.size(), held.size());
    }

    @Override
    public synchronized String toString() {
        Usage u = usage();
        return name + "'s aperture of " + u.sizeBytes() + " bytes: " + u.usedBytes() + " used in " + u.windows() + " windows, "
                + u.freeBytes() + " free in " + u.freeWindows() + " (largest " + u.largestFreeBytes() + ")";
    }
}
