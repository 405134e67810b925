package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.directmap.mm.Refusal;
import io.directmap.mm.Segment;
import io.directmap.sys.Cachestat;
import io.directmap.sys.FileHandle;
import io.directmap.sys.PageCacheAdvice;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The pages this file system's own fallback brought into the page cache, and only those, are
 * dropped before the range is decided again: pages that were cached before (someone else's), and
 * what the learning policy chose to read through the cache, stay. Needs no root: a file in a
 * temporary directory and cachestat.
 */
class OwnCachePagesTest {
    static final long MiB = 1 << 20, PAGE = io.directmap.sys.Process.PAGE_SIZE;

    @TempDir Path dir;

    static long cachedPages(OpenFile f, long start, long end) throws IOException {
        return Cachestat.query(f.handle(), start, end - start).cached();
    }

    /** Reads [start, end) through the page cache, as a device's fallback copy does. */
    static void readThroughCache(Path file, long start, long end) throws IOException {
        try (FileChannel ch = FileChannel.open(file)) {
            ByteBuffer b = ByteBuffer.allocate((int) (end - start));
            while (b.hasRemaining() && ch.read(b, start + b.position()) > 0) { }
        }
    }

    static Segment fallback(long start, long end, FsReason reason) {
        return new Segment.Fallback(start, end, new Refusal(reason, "test"));
    }

    @Test
    void pagesOurFallbackBroughtInAreDroppedAndOthersStay() throws IOException {
        Path p = dir.resolve("f.bin");
        Workloads.write(p, 0, 8 * MiB, 3);
        Workloads.syncAndEvict(p);
        Workloads.cache(p, 6 * MiB, MiB);   // someone else's cached pages, before the decision
        try (OpenFile f = OpenFile.open(p)) {
            OwnCachePages own = new OwnCachePages();
            own.decided(f, List.of(fallback(3 * MiB, 5 * MiB, FsReason.BEING_CHANGED)));
            // [2, 6) MiB: the segment and 1 MiB of read-around either side, none of it cached then.
            assertEquals(4 * MiB, own.recordedBytes(f));

            readThroughCache(p, 2 * MiB, 7 * MiB);   // the copy, and readahead past it
            assertEquals(5 * MiB / PAGE, cachedPages(f, 2 * MiB, 7 * MiB));

            own.dropBefore(f, 0, 8 * MiB);
            assertEquals(0, cachedPages(f, 2 * MiB, 6 * MiB), "the pages only our fallback brought in are gone");
            assertEquals(MiB / PAGE, cachedPages(f, 6 * MiB, 7 * MiB), "the pages cached before the decision stay");
            assertEquals(0, own.recordedBytes(f), "and nothing is dropped twice");
        }
    }

    @Test
    void onlyTheDecidedRangeIsDroppedAndTheRestStaysRecorded() throws IOException {
        Path p = dir.resolve("g.bin");
        Workloads.write(p, 0, 8 * MiB, 4);
        Workloads.syncAndEvict(p);
        try (OpenFile f = OpenFile.open(p)) {
            OwnCachePages own = new OwnCachePages();
            own.decided(f, List.of(fallback(2 * MiB, 3 * MiB, FsReason.OPEN_FOR_WRITE), fallback(5 * MiB, 6 * MiB, FsReason.HOLE)));
            assertEquals(6 * MiB, own.recordedBytes(f), "[1, 4) and [4, 7), with their read-around, joined");
            readThroughCache(p, MiB, 7 * MiB);
            own.dropBefore(f, 0, 4 * MiB);
            assertEquals(0, cachedPages(f, MiB, 4 * MiB));
            assertEquals(3 * MiB / PAGE, cachedPages(f, 4 * MiB, 7 * MiB), "outside the decided range: not yet");
            assertEquals(3 * MiB, own.recordedBytes(f));
        }
    }

    @Test
    void whatTheLearnerSentThroughTheCacheAndWhatWasCachedAreNeverRecorded() throws IOException {
        Path p = dir.resolve("h.bin");
        Workloads.write(p, 0, 4 * MiB, 5);
        Workloads.syncAndEvict(p);
        try (OpenFile f = OpenFile.open(p); FileHandle h = FileHandle.openRead(p)) {
            OwnCachePages own = new OwnCachePages();
            own.decided(f, List.of(fallback(0, 4 * MiB, FsReason.CACHE_FASTER)));
            assertEquals(0, own.recordedBytes(f), "the learner's own choice: its pages stay");
            readThroughCache(p, 0, 4 * MiB);
            own.decided(f, List.of(fallback(0, 4 * MiB, FsReason.PAGE_CACHED)));
            assertEquals(0, own.recordedBytes(f), "pages cached at the decision were not brought in by us");
            PageCacheAdvice.dropCache(h, 0, 0);
        }
    }
}
