package io.directmap.mm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.mm.FakeExporterContractTest.FakeFile;
import io.directmap.mm.FakeExporterContractTest.FakeMapping;
import io.directmap.mm.FakeExporterContractTest.FilePeer;
import io.directmap.pci.Topology;
import io.directmap.sys.FileHandle;
import io.directmap.sys.Process;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A read says which way each of its bytes came from the mapping it was read through, not from what
 * is mapped after it: an exporter that grants every window direct, then (after taking its mappings
 * back) refuses, leaves the first read saying direct and the second saying fallback with the
 * exporter's reason; an attempt that was read again leaves nothing of its mapping in the read.
 */
class ReadSegmentsTest {
    static final long PAGE = Process.PAGE_SIZE;
    static final long SIZE = FakeExporterContractTest.SIZE;   // 16 pages
    static final long WINDOW = 4 * PAGE;
    static final long BUS = FakeExporterContractTest.BUS;

    /** The exporter's one reason to refuse. */
    enum NotNow implements Reason {
        CHANGED_ITS_MIND;

        @Override public Refuser refuser() { return Refuser.EXPORTER; }
        @Override public String code() { return name().toLowerCase(Locale.ROOT); }
        @Override public String summary() { return "the exporter no longer maps this range directly"; }
        @Override public Optional<Transfer> transfer() { return Optional.empty(); }
    }

    /**
     * Grants each request whole, as one direct segment of its peer, until refuse is set; then
     * refuses it whole. A mapping in moved fails its placement check once, taken back without the
     * window being told (as the file system does when a file's blocks moved).
     */
    static final class SwitchingExporter implements VmOperations {
        final FilePeer peer;
        volatile boolean refuse;
        final Set<DeviceMapping> moved = ConcurrentHashMap.newKeySet();
        final List<FakeMapping> made = new ArrayList<>();   // guarded by this

        SwitchingExporter(FilePeer peer) {
            this.peer = peer;
        }

        @Override
        public MemorySegment fault(Vma vma, long offset, long length) {
            return vma.pages().asSlice(offset, length);
        }

        @Override
        public synchronized DeviceMapping deviceMap(Vma vma, MapRequest request) {
            long s = request.start(), e = request.end();
            Segment seg = refuse
                    ? new Segment.Fallback(s, e, new Refusal(NotNow.CHANGED_ITS_MIND, "asked again after " + made.size() + " mappings"))
                    : new Segment.Direct(s, e, peer, s, BUS + s, "fake0");
            FakeMapping m = new FakeMapping(made.size() + 1, request, List.of(seg));
            made.add(m);
            vma.onUnmap(m, () -> m.live = false);
            return m;
        }

        @Override
        public boolean verify(Vma vma, DeviceMapping mapping, long start, long end, boolean readFailed) {
            if (moved.remove(mapping)) {
                ((FakeMapping) mapping).live = false;
                return false;
            }
            return mapping.isLive();
        }

        @Override
        public void observe(Vma vma, Transfer transfer, long bytes, long nanos) {}

        @Override
        public void deviceUnmap(Vma vma, Topology.Endpoint importer, DeviceMapping mapping) {
            FakeMapping m = (FakeMapping) mapping;
            vma.forget(m);
            m.live = false;
        }

        synchronized List<FakeMapping> made() { return List.copyOf(made); }
    }

    @TempDir Path dir;
    Path file;
    byte[] content;
    AddressSpace mm;
    SoftwareDevice gpu;
    FilePeer peer;
    SwitchingExporter exporter;
    Vma vma;

    @BeforeEach
    void open() throws IOException {
        file = dir.resolve("exported.bin");
        content = FakeExporterContractTest.pattern(3);
        Files.write(file, content);
        mm = AddressSpace.create(Topology.defaults());
        gpu = SoftwareDevice.create("gpu0", mm.topology());
        peer = new FilePeer(file);
        exporter = new SwitchingExporter(peer);
        vma = mm.mmap(new FakeFile(file, FileHandle.openRead(file)), exporter);
    }

    @AfterEach
    void close() throws IOException {
        vma.close();
        gpu.close();
        mm.close();
        peer.close();
    }

    @Test
    void aReadKeepsTheWayItsBytesCameAfterItsWindowsAreTakenBackAndFaultedAnew() throws IOException {
        try (Binding b = gpu.bind(vma, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED);
             DeviceMemory.Buffer buf = gpu.allocate(file.toString(), SIZE)) {
            Binding.Read first = b.read(0, SIZE, buf.segment(), done -> { });
            assertBytes(buf.segment(), 0, SIZE);
            assertEquals(SIZE, first.directBytes());
            assertCovers(first, 0, SIZE);
            List<FakeMapping> granted = exporter.made();
            assertEquals(4, granted.size(), "one mapping per window: " + granted);
            for (int i = 0; i < 4; i++) {
                assertSame(granted.get(i).segments().getFirst(), first.segments().get(i),
                        "a window read whole gives its mapping's own segment, not a copy");
            }

            // A read that serves only part of two windows: their segments cut to it, the bus address with them.
            Binding.Read part = b.read(PAGE, 5 * PAGE, buf.segment(), done -> { });
            assertCovers(part, PAGE, 6 * PAGE);
            var a = assertInstanceOf(Segment.Direct.class, part.segments().get(0));
            var c = assertInstanceOf(Segment.Direct.class, part.segments().get(1));
            assertEquals(List.of(PAGE, WINDOW, WINDOW, 6 * PAGE), List.of(a.start(), a.end(), c.start(), c.end()));
            assertEquals(PAGE, a.deviceOffset());
            assertEquals(BUS + PAGE, a.busAddress());
            assertEquals(WINDOW, c.deviceOffset());
            assertEquals(BUS + WINDOW, c.busAddress());

            // The exporter takes every window back and will refuse from now on.
            List<Segment> before = List.copyOf(first.segments());
            exporter.refuse = true;
            vma.owner().invalidate(Invalidation.of(0, SIZE, Invalidation.Cause.CHANGED, "the exporter changed its mind", true));
            assertEquals(4, b.invalidations());
            assertEquals(List.of(), b.liveMappings(), "nothing is mapped between the reads");
            assertEquals(before, first.segments(), "the first read still says how its bytes came");
            assertTrue(first.segments().stream().allMatch(s -> s instanceof Segment.Direct), "all direct: " + first.segments());

            buf.segment().fill((byte) 0);
            Binding.Read second = b.read(0, SIZE, buf.segment(), done -> { });
            assertBytes(buf.segment(), 0, SIZE);
            assertEquals(0, second.directBytes());
            assertEquals(SIZE, second.fallbackBytes());
            assertCovers(second, 0, SIZE);
            for (Segment s : second.segments()) {
                var f = assertInstanceOf(Segment.Fallback.class, s, "every window refused: " + second.segments());
                assertSame(NotNow.CHANGED_ITS_MIND, f.refusal().reason());
            }
            assertEquals(before, first.segments(), "and still says so after the windows faulted anew");
        }
    }

    @Test
    void anAttemptReadAgainLeavesNothingOfItsMappingInTheRead() throws IOException {
        try (Binding b = gpu.bind(vma, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED);
             DeviceMemory.Buffer buf = gpu.allocate(file.toString(), SIZE)) {
            b.read(0, SIZE, buf.segment(), done -> { });
            List<FakeMapping> direct = exporter.made();
            assertEquals(4, direct.size());
            // Every window's blocks "move": the next attempt reads through its direct mapping, fails
            // the placement check, and is read again through a new mapping, which is refused.
            exporter.refuse = true;
            exporter.moved.addAll(direct);

            buf.segment().fill((byte) 0);
            Binding.Read r = b.read(0, SIZE, buf.segment(), done -> { });
            assertTrue(exporter.moved.isEmpty(), "each direct mapping was read through and checked: " + exporter.moved);
            assertTrue(r.retries() >= 4, "each window was read again: " + r.retries());
            assertBytes(buf.segment(), 0, SIZE);
            assertCovers(r, 0, SIZE);
            assertEquals(4, r.segments().size(), "one segment per window, of the delivered attempt only: " + r.segments());
            assertTrue(r.segments().stream().allMatch(s -> s instanceof Segment.Fallback),
                    "the retried direct attempts left nothing: " + r.segments());
            assertEquals(0, r.directBytes());
        }
    }

    /** The read's segments cover [start, end) in order with no gap, and their direct bytes are its directBytes(). */
    private static void assertCovers(Binding.Read r, long start, long end) {
        long at = start, direct = 0, fallback = 0;
        for (Segment s : r.segments()) {
            assertEquals(at, s.start(), "a gap or an overlap in " + r.segments());
            assertTrue(s.end() > s.start(), "an empty segment in " + r.segments());
            if (s instanceof Segment.Direct) direct += s.length(); else fallback += s.length();
            at = s.end();
        }
        assertEquals(end, at, "the segments stop short: " + r.segments());
        assertEquals(r.directBytes(), direct, "direct bytes in " + r.segments());
        assertEquals(r.fallbackBytes(), fallback, "fallback bytes in " + r.segments());
    }

    private void assertBytes(MemorySegment dst, long from, long to) {
        assertArrayEquals(Arrays.copyOfRange(content, (int) from, (int) to),
                dst.asSlice(0, to - from).toArray(ValueLayout.JAVA_BYTE), "device memory holds the file's bytes");
    }
}
