package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.DeviceAccess;
import io.directmap.device.SoftwareDevice;
import io.directmap.mm.MapMode;
import io.directmap.mm.Reason;
import io.directmap.mm.Refuser;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.testing.Bytes;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/**
 * The contract every file system adapter keeps, run against real loop-mounted file systems (as
 * Lucene's BaseDirectoryTestCase runs against every Directory): the decisions are the expected
 * ones, and device memory equals the file byte for byte whatever the mix of direct and fallback.
 */
abstract class FsContractTest {
    static final long MiB = 1 << 20;

    FsStack mm;
    SoftwareDevice gpu;
    Path file;

    abstract ScratchFs scratch();

    Policy policy() { return Policy.defaults(); }

    @BeforeEach
    void open(TestInfo info) {
        mm = FsStack.open(Topology.defaults(), policy());
        gpu = SoftwareDevice.create("gpu0", mm.topology());
        file = scratch().file(info.getTestMethod().orElseThrow().getName() + ".bin");
    }

    @AfterEach
    void close() throws IOException {
        try {
            assertEquals(List.of(), mm.fs().tracker().all(), "every device mapping is released after the test");
            for (var dev : mm.fs().blocks().known()) assertEquals(0, dev.apertureUsed(), dev + " aperture given back");
        } finally {
            gpu.close();
            mm.close();
            Files.deleteIfExists(file);
        }
    }

    /** Maps [start, end) of the file into the GPU, checks the bytes, returns the segments. */
    List<Segment> mapAndCheck(long start, long end, MapMode mode) throws IOException {
        try (Vma vma = mm.mmap(file); DeviceAccess a = gpu.access(vma, start, end, Set.of(), mode, d -> { })) {
            Bytes.assertDeviceHoldsFile(file, start, a.memory());
            assertEquals(a.mapping().start(), a.segments().getFirst().start(), "segments start where the mapping starts");
            assertEquals(a.mapping().end(), a.segments().getLast().end(), "segments end where the mapping ends");
            for (int i = 1; i < a.segments().size(); i++) {
                assertEquals(a.segments().get(i - 1).end(), a.segments().get(i).start(), "segments tile the range");
            }
            return a.segments();
        }
    }

    List<Segment> mapAndCheck() throws IOException {
        return mapAndCheck(0, Files.size(file), MapMode.MIXED);
    }

    static long direct(List<Segment> segments) {
        return segments.stream().filter(s -> s instanceof Segment.Direct).mapToLong(Segment::length).sum();
    }

    static Set<Reason> reasons(List<Segment> segments) {
        return segments.stream().filter(s -> s instanceof Segment.Fallback)
                .map(s -> ((Segment.Fallback) s).refusal().reason()).collect(Collectors.toSet());
    }

    static long bytesWith(List<Segment> segments, Reason reason) {
        return segments.stream().filter(s -> s instanceof Segment.Fallback f && f.refusal().reason() == reason)
                .mapToLong(Segment::length).sum();
    }

    @Test
    void coldFileWithSeveralExtentsGoesDirect() throws IOException {
        // Written back to front, a chunk at a time, each synced: the allocator cannot keep it contiguous.
        Path other = scratch().file("interleave.bin");
        for (int i = 7; i >= 0; i--) {
            Workloads.write(file, i * MiB, MiB, 10 + i);
            Workloads.syncAndEvict(file);
            Workloads.write(other, (7 - i) * MiB, MiB, 20 + i);
            Workloads.syncAndEvict(other);
        }
        Files.delete(other);
        try (OpenFile f = OpenFile.open(file)) {
            long mapped = mm.fs().extents(f, 0, 8 * MiB).stream().filter(x -> x.kind() == Extent.Kind.MAPPED).count();
            assertTrue(mapped >= 2, "the file has several extents, got " + mapped);
        }
        List<Segment> segments = mapAndCheck();
        assertEquals(8 * MiB, direct(segments), "a cold, fully written file goes all direct: " + segments);
    }

    @Test
    void holesFallBackAndReadAsZeros() throws IOException {
        Workloads.write(file, 0, 2 * MiB, 1);
        Workloads.write(file, 6 * MiB, 2 * MiB, 2);
        Workloads.syncAndEvict(file);
        List<Segment> segments = mapAndCheck();
        assertEquals(4 * MiB, bytesWith(segments, FsReason.HOLE), segments.toString());
        assertEquals(4 * MiB, direct(segments));
    }

    @Test
    void preallocatedUnwrittenExtentsFallBack() throws IOException {
        Workloads.write(file, 0, MiB, 3);
        Workloads.preallocate(file, MiB, 3 * MiB);
        Workloads.syncAndEvict(file);
        List<Segment> segments = mapAndCheck();
        assertEquals(3 * MiB, bytesWith(segments, FsReason.UNWRITTEN), segments.toString());
        assertEquals(MiB, direct(segments));
    }

    @Test
    void freshlyWrittenDataFallsBack() throws IOException {
        Workloads.write(file, 0, 4 * MiB, 4);
        List<Segment> segments = mapAndCheck();
        assertEquals(0, direct(segments), "unsynced data never goes direct: " + segments);
        assertTrue(Set.of(FsReason.DELALLOC, FsReason.PAGE_DIRTY).containsAll(reasons(segments)), segments.toString());
    }

    @Test
    void cachedPagesAreRefusedByDefault() throws IOException {
        Workloads.write(file, 0, 4 * MiB, 5);
        Workloads.syncAndEvict(file);
        Workloads.cache(file, MiB, MiB);
        List<Segment> segments = mapAndCheck();
        assertEquals(MiB, bytesWith(segments, FsReason.PAGE_CACHED), segments.toString());
        assertEquals(3 * MiB, direct(segments));
        Segment cached = segments.stream().filter(s -> s instanceof Segment.Fallback).findFirst().orElseThrow();
        assertEquals(MiB, cached.start());
        assertEquals(Refuser.FILESYSTEM, ((Segment.Fallback) cached).refusal().reason().refuser());
    }

    @Test
    void unalignedRangeAndTailAreByteExact() throws IOException {
        Workloads.write(file, 0, 3 * MiB + 1234, 6);
        Workloads.syncAndEvict(file);
        List<Segment> whole = mapAndCheck();
        assertTrue(direct(whole) >= 3 * MiB, whole.toString());
        mapAndCheck(4097, 3 * MiB + 1000, MapMode.MIXED);
    }

    @Test
    void allOrNothingFallsBackEntirelyAndGivesBackWhatItReserved() throws IOException {
        Workloads.write(file, 0, 4 * MiB, 7);
        Workloads.syncAndEvict(file);
        Workloads.cache(file, 0, MiB);
        List<Segment> segments = mapAndCheck(0, 4 * MiB, MapMode.ALL_OR_NOTHING);
        assertEquals(0, direct(segments));
        assertEquals(MiB, bytesWith(segments, FsReason.PAGE_CACHED));
        assertEquals(3 * MiB, bytesWith(segments, FsReason.ALL_OR_NOTHING));
        assertEquals(Refuser.IMPORTER, FsReason.ALL_OR_NOTHING.refuser());
        // @AfterEach checks that the aperture reserved for the 3 MiB was given back.
    }

    @Test
    void mappingsAreTrackedUntilUnmapped() throws IOException {
        Workloads.write(file, 0, 2 * MiB, 8);
        Workloads.syncAndEvict(file);
        try (Vma vma = mm.mmap(file)) {
            DeviceAccess a = gpu.access(vma, 0, 2 * MiB);
            assertEquals(1, mm.fs().tracker().overlapping(OpenFile.of(vma), MiB, MiB + 1).size());
            assertEquals(0, mm.fs().tracker().overlapping(OpenFile.of(vma), 2 * MiB, 3 * MiB).size());
            assertTrue(gpu.table().size() > 0, "the IOMMU table is programmed");
            a.close();
            assertEquals(0, mm.fs().tracker().all().size());
            assertEquals(0, gpu.table().size(), "the IOMMU table is empty after unmap");
        }
    }

    @Test
    void munmapReleasesDeviceMappingsLeftOpen() throws IOException {
        Workloads.write(file, 0, MiB, 9);
        Workloads.syncAndEvict(file);
        Vma vma = mm.mmap(file);
        DeviceAccess a = gpu.access(vma, 0, MiB);
        assertEquals(1, vma.liveDeviceMappings());
        vma.close();
        assertEquals(0, mm.fs().tracker().all().size(), "munmap released the device mapping");
        a.close();
        assertFalse(a.mapping().isLive());
    }
}
