package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.lang.Xorshift;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.Reason;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.sys.Cachestat;
import io.directmap.sys.FileHandle;
import io.directmap.sys.PageCacheAdvice;
import io.directmap.testing.ChildWriter;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.TestInfo;

/**
 * The WRITE contract every file system adapter keeps, on real loop-mounted file systems: where the
 * file system and the block device agree, the device writes the file's blocks directly; every
 * other range is written through the file system with its reason; either way the file then reads
 * back, through the file system and with its cache dropped, exactly as the device wrote it.
 */
abstract class DeviceWriteContractTest {
    static final long MiB = 1 << 20;

    FsStack mm;
    SoftwareDevice gpu;
    Path file;

    abstract ScratchFs scratch();

    @BeforeEach
    void open(TestInfo info) {
        mm = FsStack.open(Topology.defaults(), Policy.defaults());
        gpu = SoftwareDevice.create("gpu0", mm.topology());
        file = scratch().file(info.getTestMethod().orElseThrow().getName() + ".bin");
    }

    @AfterEach
    void close() throws IOException {
        try {
            assertEquals(List.of(), mm.fs().tracker().all(), "every device mapping is released after the test");
            for (var dev : mm.fs().blocks().known()) assertEquals(0, dev.apertureUsed(), dev + " aperture given back");
            if (Files.exists(file)) assertEquals(List.of(), ChildWriter.leasesOn(file), "no lease is left on the file");
        } finally {
            gpu.close();
            mm.close();
            Files.deleteIfExists(file);
        }
    }

    /** What the device writes: seeded bytes in device memory, and the same bytes on the heap to compare with. */
    record Source(DeviceMemory.Buffer buffer, byte[] bytes) implements AutoCloseable {
        @Override public void close() { buffer.close(); }
    }

    Source source(long length, long seed) throws IOException {
        DeviceMemory.Buffer b = gpu.allocate("source", length);
        MemorySegment m = b.segment().asSlice(0, length);
        Xorshift.seeded(seed).fill(m);
        return new Source(b, m.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
    }

    /** Writes src at offset through a WRITE binding of [offset, offset + length) (page-rounded); returns what it did. */
    Binding.Write write(long offset, Source src, boolean durable) throws IOException {
        long page = io.directmap.sys.Process.PAGE_SIZE;
        long length = src.bytes().length;
        long end = (offset + length + page - 1) / page * page;
        try (Vma vma = mm.mmapForWrite(file);
             Binding b = gpu.bind(vma, offset, end, end - offset, Set.of(MapFlag.WRITE), MapMode.MIXED)) {
            return b.write(offset, src.buffer().segment().asSlice(0, length), durable, n -> { });
        }
    }

    /** The file's bytes [offset, offset + length) as the file system returns them after dropping its clean cache. */
    static byte[] readBack(Path file, long offset, int length) throws IOException {
        try (FileHandle h = FileHandle.openRead(file)) {
            h.fsync();
            PageCacheAdvice.dropCache(h, 0, 0);
        }
        return Workloads.read(file, offset, length);
    }

    static long cachedPages(Path file, long offset, long length) throws IOException {
        try (FileHandle h = FileHandle.openRead(file)) {
            return Cachestat.query(h, offset, length).cached();
        }
    }

    static long bytesWith(List<Segment> segments, Reason reason) {
        return segments.stream().filter(s -> s instanceof Segment.Fallback f && f.refusal().reason() == reason)
                .mapToLong(Segment::length).sum();
    }

    /** The bytes of [from, to) refused with one of reasons. */
    static long bytesIn(List<Segment> segments, long from, long to, Reason... reasons) {
        long n = 0;
        for (Segment s : segments) {
            if (s instanceof Segment.Fallback f && java.util.Arrays.asList(reasons).contains(f.refusal().reason())) {
                n += Math.max(0, Math.min(to, s.end()) - Math.max(from, s.start()));
            }
        }
        return n;
    }

    static void assertTiles(long start, long end, List<Segment> segments) {
        assertEquals(start, segments.getFirst().start(), "segments start where the write starts: " + segments);
        assertEquals(end, segments.getLast().end(), "segments end where the write ends: " + segments);
        for (int i = 1; i < segments.size(); i++) {
            assertEquals(segments.get(i - 1).end(), segments.get(i).start(), "segments tile the write: " + segments);
        }
    }

    @org.junit.jupiter.api.Test
    void coldWrittenFileIsWrittenDirectlyAndReadsBackThroughTheFileSystem() throws Exception {
        Workloads.write(file, 0, 8 * MiB, 1);
        Workloads.syncAndEvict(file);
        FileTime before = Files.getLastModifiedTime(file);
        FileTime ctimeBefore = (FileTime) Files.getAttribute(file, "unix:ctime");
        Thread.sleep(20);   // timestamps have a coarse clock: let it tick so a move is visible
        try (Source src = source(8 * MiB, 2)) {
            Binding.Write w = write(0, src, true);
            assertTiles(0, 8 * MiB, w.segments());
            for (Segment seg : w.segments()) {
                if (seg instanceof Segment.Direct) {
                    assertEquals(0, cachedPages(file, seg.start(), seg.length()), "the page cache holds none of a range written directly");
                }
            }
            assertDirectWhereAllowed(w);
            assertArrayEquals(src.bytes(), readBack(file, 0, (int) (8 * MiB)), "the file reads back as the device wrote it");
        }
        assertTrue(Files.getLastModifiedTime(file).compareTo(before) > 0, "mtime moved");
        assertTrue(((FileTime) Files.getAttribute(file, "unix:ctime")).compareTo(ctimeBefore) > 0, "ctime moved");
        assertEquals(8 * MiB, Files.size(file), "the file keeps its size");
    }

    /** Whether this file system lets a device write its blocks at all (btrfs does not). */
    boolean directWrites() { return true; }

    /** On a file system that allows direct writes, all of it went direct; btrfs overrides. */
    void assertDirectWhereAllowed(Binding.Write w) {
        assertEquals(8 * MiB, w.directBytes(), "a cold, written, unshared file goes all direct: " + w.segments());
    }

    @org.junit.jupiter.api.Test
    void holesUnwrittenCachedAndDirtyRangesAreWrittenThroughTheFileSystem() throws IOException {
        Workloads.write(file, 0, 2 * MiB, 3);
        Workloads.preallocate(file, 2 * MiB, 2 * MiB);          // [2, 4) unwritten
        Workloads.write(file, 6 * MiB, 2 * MiB, 4);             // [4, 6) a hole
        Workloads.syncAndEvict(file);
        Workloads.cache(file, MiB, MiB / 2);                    // [1, 1.5) cached
        Workloads.write(file, 7 * MiB, MiB, 5);                 // [7, 8) dirty
        try (Source src = source(8 * MiB, 6)) {
            Binding.Write w = write(0, src, false);
            assertTiles(0, 8 * MiB, w.segments());
            assertRefusedWhereItMust(w.segments());
            assertArrayEquals(src.bytes(), readBack(file, 0, (int) (8 * MiB)), "every byte landed, direct or not");
        }
    }

    void assertRefusedWhereItMust(List<Segment> segments) {
        assertEquals(2 * MiB, bytesWith(segments, FsReason.UNWRITTEN), segments.toString());
        assertEquals(2 * MiB, bytesWith(segments, FsReason.HOLE), segments.toString());
        assertEquals(MiB / 2, bytesIn(segments, MiB, MiB + MiB / 2, FsReason.CACHED_FOR_WRITE), segments.toString());
        // Dirty (or not even allocated) until writeback; writeback may come first, and leave the pages cached.
        assertEquals(MiB, bytesIn(segments, 7 * MiB, 8 * MiB, FsReason.PAGE_DIRTY, FsReason.DELALLOC, FsReason.CACHED_FOR_WRITE),
                segments.toString());
        long direct = segments.stream().filter(s -> s instanceof Segment.Direct).mapToLong(Segment::length).sum();
        assertEquals(2 * MiB + MiB / 2, direct, "the written, cold, clean ranges go direct: " + segments);
    }

    @org.junit.jupiter.api.Test
    void pagesThisProcessCachedUnderALiveMappingDoNotKeepTheOldBytes() throws IOException {
        Workloads.write(file, 0, 2 * MiB, 13);
        Workloads.syncAndEvict(file);
        try (Source first = source(2 * MiB, 14); Source second = source(2 * MiB, 15);
             Vma vma = mm.mmapForWrite(file);
             Binding b = gpu.bind(vma, 0, 2 * MiB, 2 * MiB, Set.of(MapFlag.WRITE), MapMode.MIXED)) {
            b.write(0, first.buffer().segment().asSlice(0, 2 * MiB), false, n -> { });
            // The CPU touches the file through this process's own mapping: its pages come into the
            // cache (no open, so no lease break), under the window the device still holds.
            byte[] seen = vma.pages().asSlice(0, 2 * MiB).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            assertArrayEquals(first.bytes(), seen, "the CPU sees the first write");
            assertTrue(cachedPages(vma, 0, 2 * MiB) > 0, "the CPU's reads cached pages of the range");
            Binding.Write w = b.write(0, second.buffer().segment().asSlice(0, 2 * MiB), false, n -> { });
            if (directWrites()) assertEquals(2 * MiB, w.directBytes(), "the window decided before stays direct: " + w.segments());
            assertArrayEquals(second.bytes(), vma.pages().asSlice(0, 2 * MiB).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE),
                    "no cached page kept the first write's bytes");
        }
    }

    /**
     * The write lease is gone while the mapping decided under it still looks live (lease-break-time
     * passed while the lease thread was gone, and the kernel let the opener go): here the kernel's
     * lease is dropped behind the gate's back, and the file shrinks meanwhile, freeing the blocks
     * of [1, 2) MiB. A device write through the old mapping would land in freed blocks and be lost;
     * it must instead see that no lease holds the file, take the mapping back and decide afresh.
     */
    @org.junit.jupiter.api.Test
    void aWriteLeaseLostBehindTheGatesBackIsNotWrittenThrough() throws IOException {
        Workloads.write(file, 0, 2 * MiB, 21);
        Workloads.syncAndEvict(file);
        byte[] expected;
        try (Source first = source(2 * MiB, 22); Source second = source(2 * MiB, 23);
             Vma vma = mm.mmapForWrite(file);
             Binding b = gpu.bind(vma, 0, 2 * MiB, 2 * MiB, Set.of(MapFlag.WRITE), MapMode.MIXED)) {
            Binding.Write w1 = b.write(0, first.buffer().segment().asSlice(0, 2 * MiB), false, n -> { });
            if (directWrites()) assertEquals(2 * MiB, w1.directBytes(), "the first write goes direct: " + w1.segments());
            io.directmap.sys.Leases.shared().release(OpenFile.of(vma).handle());
            try (java.nio.channels.FileChannel c = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
                c.truncate(MiB);   // no lease: nothing holds this back
            }
            Binding.Write w2 = b.write(0, second.buffer().segment().asSlice(0, 2 * MiB), false, n -> { });
            assertTiles(0, 2 * MiB, w2.segments());
            expected = second.bytes();
        }
        assertEquals(2 * MiB, Files.size(file), "the file system wrote (and extended) what lies past the new end");
        assertArrayEquals(expected, readBack(file, 0, (int) (2 * MiB)), "no byte went to blocks the file gave up");
    }

    /**
     * ENOSPC on the fallback's writes past the end: the write fails naming the file, the range that
     * failed and the errno; what lies below the old end holds, page by page, its old or its new
     * bytes; no mapping, aperture or lease is left (checked after each test).
     */
    @org.junit.jupiter.api.Test
    void aWritePastTheEndOnAFullFileSystemFailsNamingTheRangeAndLeavesNothingHeld() throws IOException {
        Workloads.write(file, 0, MiB, 31);
        Workloads.syncAndEvict(file);
        byte[] old = Workloads.read(file, 0, (int) MiB);
        Path filler = file.resolveSibling(file.getFileName() + ".filler");
        try (Source src = source(2 * MiB, 32)) {
            fill(filler);
            IOException e = org.junit.jupiter.api.Assertions.assertThrows(IOException.class, () -> write(0, src, false));
            String msg = e.getMessage();
            assertTrue(msg.contains(file.toString()) && msg.contains("failed") && msg.contains("ENOSPC"), msg);
            Files.delete(filler);
            byte[] now = readBack(file, 0, (int) MiB);
            int page = io.directmap.sys.Process.PAGE_SIZE;
            for (int at = 0; at < MiB; at += page) {
                byte[] got = java.util.Arrays.copyOfRange(now, at, at + page);
                assertTrue(java.util.Arrays.equals(got, java.util.Arrays.copyOfRange(old, at, at + page))
                        || java.util.Arrays.equals(got, java.util.Arrays.copyOfRange(src.bytes(), at, at + page)),
                        "page at " + at + " holds its old or its new bytes");
            }
            Binding.Write again = write(0, src, false);
            assertTiles(0, 2 * MiB, again.segments());
            assertArrayEquals(src.bytes(), readBack(file, 0, (int) (2 * MiB)), "with room again, the write lands");
        } finally {
            Files.deleteIfExists(filler);
        }
    }

    /** Takes every block the file system has left (fallocate, in ever smaller pieces). */
    static void fill(Path filler) throws IOException {
        long at = 0;
        for (long chunk = Files.getFileStore(filler.getParent()).getUnallocatedSpace(); chunk >= 64 << 10; ) {
            try {
                Workloads.preallocate(filler, at, chunk);
                at += chunk;
            } catch (IOException full) {
                chunk /= 2;
            }
        }
    }

    static long cachedPages(Vma vma, long offset, long length) throws IOException {
        return Cachestat.query(OpenFile.of(vma).handle(), offset, length).cached();
    }

    @org.junit.jupiter.api.Test
    void aFileOpenElsewhereIsWrittenThroughTheFileSystem() throws IOException {
        Workloads.write(file, 0, 2 * MiB, 9);
        Workloads.syncAndEvict(file);
        try (Source src = source(2 * MiB, 10);
             java.nio.channels.FileChannel reader = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.READ)) {
            Binding.Write w = write(0, src, false);
            assertEquals(0, w.directBytes(), "no write lease while another descriptor has the file open: " + w.segments());
            if (directWrites()) assertEquals(2 * MiB, bytesWith(w.segments(), FsReason.OPEN_ELSEWHERE), w.segments().toString());
            assertTrue(reader.isOpen());
            assertArrayEquals(src.bytes(), readBack(file, 0, (int) (2 * MiB)));
        }
    }

    @org.junit.jupiter.api.Test
    void theLastPartialPageAndWhatLiesPastTheEndAreWrittenByTheFileSystem() throws IOException {
        long size = 3 * MiB + 1234;
        Workloads.write(file, 0, size, 7);
        Workloads.syncAndEvict(file);
        try (Source src = source(4 * MiB, 8)) {
            Binding.Write w = write(0, src, true);
            assertTiles(0, 4 * MiB, w.segments());
            long page = io.directmap.sys.Process.PAGE_SIZE;
            assertEquals(directWrites() ? 4 * MiB - size / page * page : 0, bytesWith(w.segments(), FsReason.PAST_EOF),
                    w.segments().toString());
            assertEquals(4 * MiB, Files.size(file), "the file system extended the file");
            assertArrayEquals(src.bytes(), readBack(file, 0, (int) (4 * MiB)));
        }
    }
}
