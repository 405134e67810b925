package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.dmabuf.Attachment;
import io.directmap.dmabuf.DmaBuf;
import io.directmap.dmabuf.PinRefusedException;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.testing.Bytes;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/**
 * What a pin holds, on each file system that can hold one (ext4, xfs): the same contract run
 * against each, as {@link FsContractTest} is. Other processes' opens for writing, truncates, hole
 * punches and the file system's defragmenter are refused (ETXTBSY) while the pin lives, the device
 * reads the same bytes before and after, and once the last reference goes the same operations
 * succeed at once.
 */
abstract class PinContractTest {
    static final long MiB = 1 << 20;
    static final Duration TOOL_TIMEOUT = Duration.ofSeconds(30);

    FsStack mm;
    SoftwareDevice gpu0, gpu1;
    Path file;

    abstract ScratchFs scratch();

    /** The file system's defragmenter, as an argument list for file. */
    abstract List<String> defragment(Path file);

    @BeforeEach
    void open(TestInfo info) throws IOException {
        ScratchFs.requireRootFixtures(scratch().type());
        mm = FsStack.open(Topology.defaults(), Policy.defaults());
        gpu0 = SoftwareDevice.create("gpu0", mm.topology());
        gpu1 = SoftwareDevice.create("gpu1", mm.topology());
        file = scratch().file(info.getTestMethod().orElseThrow().getName() + ".bin");
        Workloads.write(file, 0, 8 * MiB, 42);
        Workloads.syncAndEvict(file);
    }

    @AfterEach
    void close() throws IOException {
        try {
            assertEquals(List.of(), mm.fs().pins(), "every pin is released after the test");
            for (var dev : mm.fs().blocks().known()) assertEquals(0, dev.apertureUsed(), dev + " aperture given back");
        } finally {
            gpu0.close();
            gpu1.close();
            mm.close();
            Files.deleteIfExists(file);
        }
    }

    PinOutcome.Pinned pin(OpenFile f, long start, long end) throws IOException {
        MapRequest r = new MapRequest(gpu0.endpoint(), start, end, EnumSet.of(MapFlag.PIN), MapMode.ALL_OR_NOTHING);
        return assertInstanceOf(PinOutcome.Pinned.class, mm.fs().pin(f, r, mm.changeWatch()));
    }

    /** The device reads what the attachment maps, and it is the file's bytes. */
    void assertDeviceReadsTheFile(SoftwareDevice dev, Attachment a) throws IOException {
        DmaBuf b = a.buffer();
        try (DeviceMemory.Buffer mem = dev.allocate("pinned", b.end() - b.start())) {
            dev.readDirect(a.map(), b.start(), mem.segment());
            Bytes.assertDeviceHoldsFile(file, b.start(), mem.segment());
        }
    }

    /** Runs a tool that changes file; the message it failed with, or null when it succeeded. */
    static String failure(List<String> command) {
        try {
            Commands.run(command, null, TOOL_TIMEOUT);
            return null;
        } catch (IOException e) {
            return e.getMessage();
        }
    }

    static List<String> ddWrite(Path file) {
        return List.of("dd", "if=/dev/zero", "of=" + file, "bs=4096", "count=1", "conv=notrunc,fsync", "status=none");
    }

    static List<String> truncate(Path file) {
        return List.of("truncate", "-s", "4096", file.toString());
    }

    static List<String> punch(Path file) {
        return List.of("fallocate", "--punch-hole", "--offset", "0", "--length", "4096", file.toString());
    }

    /**
     * file, rewritten as 64 runs of 64 KiB allocated out of order (the even runs interleaved with
     * another file's, then the odd ones), each written with O_DIRECT so that each allocates exactly
     * its own blocks (buffered writes let xfs's speculative preallocation lay them out in order):
     * fragmented, so the defragmenter has blocks to move.
     */
    void writeFragmented() throws IOException {
        Files.delete(file);
        Path other = file.resolveSibling(file.getFileName() + ".interleaved");
        try {
            for (int pass = 0; pass < 2; pass++) {
                for (int i = pass; i < 64; i += 2) {
                    writeDirect(file, i);
                    if (pass == 0) writeDirect(other, i);
                }
            }
        } finally {
            Files.deleteIfExists(other);
        }
        Workloads.syncAndEvict(file);
    }

    private static void writeDirect(Path f, int run) throws IOException {
        Commands.run(List.of("dd", "if=/dev/urandom", "of=" + f, "bs=64K", "count=1", "seek=" + run, "oflag=direct",
                "conv=notrunc", "status=none"), null, TOOL_TIMEOUT);
    }

    @Test
    void writersTruncatesPunchesAndTheDefragmenterAreRefusedWhilePinned() throws Exception {
        writeFragmented();
        long size = 64 * 65536L;
        List<Extent> before;
        try (OpenFile f = OpenFile.open(file)) {
            before = mm.fs().extents(f, 0, size);
            assertTrue(before.size() > 1, "the file is fragmented: " + before);
            PinOutcome.Pinned p = pin(f, 0, size);
            assertTrue(p.segments().stream().allMatch(s -> s instanceof Segment.Direct), p.segments().toString());
            try (Attachment a = p.buf().attach(gpu0.endpoint())) {
                p.buf().release();
                assertDeviceReadsTheFile(gpu0, a);
                byte[] bytes = Files.readAllBytes(file);
                for (List<String> change : List.of(ddWrite(file), truncate(file), punch(file))) {
                    String why = failure(change);
                    assertTrue(why != null && why.contains("Text file busy"), change + " must fail with ETXTBSY, got: " + why);
                }
                String defrag = failure(defragment(file));
                assertEquals(before, mm.fs().extents(f, 0, size), defragment(file) + " moved pinned blocks (it said: " + defrag + ")");
                assertTrue(java.util.Arrays.equals(bytes, Files.readAllBytes(file)), "the file's bytes did not change");
                assertDeviceReadsTheFile(gpu0, a);
                assertEquals(1, mm.fs().pins().size());
                assertTrue(mm.fs().pins().getFirst().refused() >= 4, mm.fs().pins().toString());
            }
            assertEquals(List.of(), mm.fs().pins(), "the last reference went: the pin is gone");
            // The control: unpinned, the same defragmenter does move the blocks.
            assertEquals(null, failure(defragment(file)));
            assertTrue(!before.equals(mm.fs().extents(f, 0, size)), "unpinned, " + defragment(file) + " moved the blocks");
        }
        for (List<String> change : List.of(ddWrite(file), punch(file), truncate(file))) {
            assertEquals(null, failure(change), change + " succeeds once the pin is released");
        }
    }

    @Test
    void aBufferOutlivesItsVmaAndDescriptorAndTwoImportersHoldItUntilTheLastRelease() throws Exception {
        Vma vma = mm.mmap(file);
        PinOutcome.Pinned p = pin(OpenFile.of(vma), 0, 4 * MiB);
        Attachment a0 = p.buf().attach(gpu0.endpoint()), a1 = p.buf().attach(gpu1.endpoint());
        assertEquals(3, p.buf().refCnt());
        p.buf().release();
        vma.close();   // munmap, and the descriptor it was pinned through is closed
        assertDeviceReadsTheFile(gpu0, a0);
        assertDeviceReadsTheFile(gpu1, a1);
        assertTrue(failure(ddWrite(file)).contains("Text file busy"));
        a0.close();
        assertTrue(failure(ddWrite(file)).contains("Text file busy"), "gpu1 still holds the pin");
        assertDeviceReadsTheFile(gpu1, a1);
        a1.close();
        assertTrue(p.buf().isReleased());
        assertEquals(null, failure(ddWrite(file)), "the last release ended the pin");
    }

    @Test
    void aDynamicImporterIsAskedToLetGoAndTheBlocksMoveOnlyAfterItDid() throws Exception {
        List<String> seen = Collections.synchronizedList(new ArrayList<>());
        try (OpenFile f = OpenFile.open(file)) {
            PinOutcome.Pinned p = pin(f, 0, 4 * MiB);
            Attachment dyn = p.buf().attachDynamic(gpu1.endpoint(), (a, why) -> {
                try {
                    // The punch waits for this return: its blocks are still mapped here.
                    seen.add("let go, extent at 0 is " + mm.fs().extents(f, 0, 4096).getFirst().kind());
                } catch (IOException e) {
                    seen.add("FIEMAP failed: " + e);
                }
            });
            assertDeviceReadsTheFile(gpu1, dyn);
            p.buf().release();   // only the dynamic attachment keeps the buffer: nothing pins
            assertEquals(null, failure(punch(file)), "with nothing pinned, a punch is let through after move_notify");
            seen.add("punched, extent at 0 is " + mm.fs().extents(f, 0, 4096).getFirst().kind());
            assertEquals(List.of("let go, extent at 0 is MAPPED", "punched, extent at 0 is HOLE"), seen);
            IOException again = assertThrows(IOException.class, dyn::map, "the range now has a hole: it cannot be held again");
            assertTrue(again.getMessage().contains("hole"), again.getMessage());
            dyn.close();
            assertTrue(p.buf().isReleased());
        }
    }

    @Test
    void aForgottenBufferIsReportedAndItsPinEnds() throws Exception {
        long leaks = DmaBuf.leaksReported();
        try (OpenFile f = OpenFile.open(file)) {
            pinAndForget(f);   // (whether a writer is refused before the collector finds it depends on when it runs)
            long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(30);
            while (!mm.fs().pins().isEmpty() && System.nanoTime() < deadline) {
                System.gc();
                Thread.sleep(10);
            }
            assertEquals(List.of(), mm.fs().pins(), "the leak cleaner released the pin");
            assertTrue(DmaBuf.leaksReported() > leaks);
        }
        assertEquals(null, failure(ddWrite(file)));
    }

    private void pinAndForget(OpenFile f) throws IOException {
        pin(f, 0, MiB);
    }

    @Test
    void aPinWhosePlanFailsAfterTheMarkLeavesNothingHeld() throws Exception {
        try (OpenFile f = OpenFile.open(file); var fault = io.directmap.fault.Faults.enable(io.directmap.fault.FaultPoint.PIN_PLAN_ERROR, 1.0, 1)) {
            MapRequest r = new MapRequest(gpu0.endpoint(), 0, MiB, EnumSet.of(MapFlag.PIN), MapMode.ALL_OR_NOTHING);
            IOException e = assertThrows(IOException.class, () -> mm.fs().pin(f, r, mm.changeWatch()));
            assertTrue(e.getMessage().contains("pin_plan_error"), e.getMessage());
            assertEquals(1, fault.fired());
        }
        assertEquals(List.of(), mm.fs().pins());
        assertEquals(null, failure(ddWrite(file)), "the mark went with the failed pin: writers go");
    }

    @Test
    void withoutAChangeWatchAPinIsRefusedWithTheReason() throws Exception {
        try (OpenFile f = OpenFile.open(file); var fault = io.directmap.fault.Faults.enable(io.directmap.fault.FaultPoint.FANOTIFY_INIT);
             ChangeWatch none = ChangeWatch.open()) {
            assertFalse(none.available());
            MapRequest r = new MapRequest(gpu0.endpoint(), 0, MiB, EnumSet.of(MapFlag.PIN), MapMode.ALL_OR_NOTHING);
            PinOutcome.Refused no = assertInstanceOf(PinOutcome.Refused.class, mm.fs().pin(f, r, none));
            assertEquals(FsReason.PIN_UNWATCHED, no.refusal().reason());
            assertTrue(no.refusal().detail().contains("fanotify_init"), no.refusal().detail());
            assertTrue(fault.fired() > 0);
        }
        assertEquals(List.of(), mm.fs().pins());
        assertEquals(null, failure(ddWrite(file)));
    }

    @Test
    void anOpenThatTruncatesAsksDynamicImportersToLetGoFirst() throws Exception {
        List<Long> sizeWhenToldToLetGo = Collections.synchronizedList(new ArrayList<>());
        try (OpenFile f = OpenFile.open(file)) {
            PinOutcome.Pinned p = pin(f, 0, MiB);
            Attachment dyn = p.buf().attachDynamic(gpu1.endpoint(), (a, why) -> {
                try {
                    sizeWhenToldToLetGo.add(Files.size(file));   // a stat: no descriptor of the file is opened
                } catch (IOException e) {
                    sizeWhenToldToLetGo.add(-1L);
                }
            });
            dyn.map();
            p.buf().release();
            // dd without conv=notrunc opens with O_TRUNC: the kernel truncates inside open(), with no access event.
            assertEquals(null, failure(List.of("dd", "if=/dev/zero", "of=" + file, "bs=4096", "count=1", "status=none")));
            assertEquals(List.of(8 * MiB), sizeWhenToldToLetGo, "told before the truncation; not again for dd's write, as it had let go");
            assertEquals(4096, Files.size(file));
            dyn.close();
        }
    }

    @Test
    void aPinTakenWhileAChangeIsLetThroughIsDecidedAfterTheChangeEnded() throws Exception {
        try (OpenFile f = OpenFile.open(file)) {
            PinOutcome.Pinned p = pin(f, 0, MiB);
            List<Attachment> late = Collections.synchronizedList(new ArrayList<>());
            CompletableFuture<String> mappedDuringTheMove = new CompletableFuture<>();
            Attachment dyn = p.buf().attachDynamic(gpu1.endpoint(), (a, why) -> {
                // A pinned importer arrives while the punch waits for this importer to let go, and
                // maps at once: the attach goes on once the move is over, the punch maybe not.
                Thread.ofPlatform().start(() -> {
                    try {
                        Attachment pinned = p.buf().attach(gpu0.endpoint());
                        late.add(pinned);
                        pinned.map();
                        mappedDuringTheMove.complete("mapped the old placement");
                    } catch (IOException e) {
                        mappedDuringTheMove.complete(e.getMessage());
                    } catch (Throwable t) {
                        mappedDuringTheMove.completeExceptionally(t);
                    }
                });
            });
            dyn.map();
            p.buf().release();
            assertEquals(null, failure(punch(file)), "with nothing pinned, a punch is let through after move_notify");
            // Its mapping was decided once the punch ended: not the old placement, but a hole.
            String mapped = mappedDuringTheMove.get(30, TimeUnit.SECONDS);
            assertTrue(mapped.contains("hole"), mapped);
            assertEquals("HOLE", mm.fs().extents(f, 0, 4096).getFirst().kind().name());
            assertEquals(1, late.size());
            late.getFirst().close();
            dyn.close();
            assertTrue(p.buf().isReleased());
        }
    }

    @Test
    void aSharedWritableMappingMadeWhileOnlyDynamicImportersHeldRefusesAPinUntilItIsUnmapped() throws Exception {
        try (OpenFile f = OpenFile.open(file)) {
            PinOutcome.Pinned p = pin(f, 0, MiB);
            Attachment dyn = p.buf().attachDynamic(gpu1.endpoint(), (a, why) -> { });
            dyn.map();
            p.buf().release();
            try (Arena arena = Arena.ofConfined();
                    FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                ch.map(FileChannel.MapMode.READ_WRITE, 0, 4096, arena);   // let through: only a dynamic importer held it
                PinRefusedException e = assertThrows(PinRefusedException.class, () -> p.buf().attach(gpu0.endpoint()),
                        "its stores raise no event: a pin could not hold the bytes");
                assertEquals(FsReason.PIN_SHARED_WRITER, e.refusal().reason());
                assertTrue(e.getMessage().contains("pid " + ProcessHandle.current().pid()), e.getMessage());
                assertFalse(p.buf().pinned(), "the refused pin took nothing");
                assertEquals(1, p.buf().refCnt());
            }
            Workloads.syncAndEvict(file);
            Attachment again = p.buf().attach(gpu0.endpoint());   // unmapped: pinned again
            assertDeviceReadsTheFile(gpu0, again);
            String refused = failure(ddWrite(file));
            assertTrue(refused != null && refused.contains("Text file busy"), "pinned again, a writer is refused: " + refused);
            again.close();
            dyn.close();
            assertTrue(p.buf().isReleased());
        }
    }

    @Test
    void aFileOpenForWritingElsewhereIsNotPinned() throws Exception {
        try (OpenFile f = OpenFile.open(file); var writer = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
            MapRequest r = new MapRequest(gpu0.endpoint(), 0, MiB, EnumSet.of(MapFlag.PIN), MapMode.ALL_OR_NOTHING);
            PinOutcome.Refused no = assertInstanceOf(PinOutcome.Refused.class, mm.fs().pin(f, r, mm.changeWatch()));
            assertEquals(FsReason.OPEN_FOR_WRITE, no.refusal().reason(), no.toString());
            assertTrue(writer.isOpen());
        }
        assertEquals(null, failure(ddWrite(file)), "a refused pin leaves nothing marked");
    }

    @Test
    void aRangeInThePageCacheIsNotPinnedAndNothingIsHeld() throws Exception {
        Workloads.cache(file, 0, MiB);
        try (OpenFile f = OpenFile.open(file)) {
            MapRequest r = new MapRequest(gpu0.endpoint(), 0, 2 * MiB, EnumSet.of(MapFlag.PIN), MapMode.ALL_OR_NOTHING);
            PinOutcome.Refused no = assertInstanceOf(PinOutcome.Refused.class, mm.fs().pin(f, r, mm.changeWatch()));
            assertEquals(FsReason.PIN_NOT_DIRECT, no.refusal().reason(), no.toString());
            assertTrue(no.refusal().detail().contains("page_cached"), no.refusal().detail());
        }
        assertEquals(null, failure(ddWrite(file)));
        assertFalse(mm.fs().pins().iterator().hasNext());
    }
}
