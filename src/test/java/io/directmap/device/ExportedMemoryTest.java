package io.directmap.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import io.directmap.lang.Xorshift;
import io.directmap.mm.AddressSpace;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Refuser;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.sys.Errno;
import io.directmap.sys.FileHandle;
import io.directmap.sys.Statx;
import io.directmap.sys.SysException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Device to device through a device file (the proposal: "the same 2 vm_operations_struct call
 * back can be use ... when the vma is a mmap of a device file"): gpu1 exports its memory, nic0
 * maps the device file and reads it, peer-to-peer where the topology allows, through host memory
 * where it does not; and gpu1 frees its memory only after nic0 has let go.
 */
class ExportedMemoryTest {
    static final long MiB = 1L << 20;
    static final long SIZE = 4 * MiB, WINDOW = MiB;

    final List<AutoCloseable> opened = new ArrayList<>();
    final int handlesBefore = FileHandle.openCount();
    /** Descriptors a test keeps open on purpose (memory set aside until the process exits). */
    int keptOnPurpose;

    /** Everything a test opened is closed, last first, even when the test failed. */
    @AfterEach
    void closeAll() throws Exception {
        Exception failure = null;
        for (int i = opened.size() - 1; i >= 0; i--) {
            try {
                opened.get(i).close();
            } catch (Exception e) {
                if (failure == null) failure = e; else failure.addSuppressed(e);
            }
        }
        if (failure != null) throw failure;
        assertEquals(handlesBefore + keptOnPurpose, FileHandle.openCount(), "every descriptor (memfds, device files) was given back");
    }

    <T extends AutoCloseable> T open(T t) {
        opened.add(t);
        return t;
    }

    record Stack(Topology topology, AddressSpace mm, SoftwareDevice gpu, SoftwareDevice nic, ExportedMemory exported,
                 byte[] pattern) {}

    /** gpu1 exporting SIZE bytes filled from seed, nic0 importing, on topology. */
    Stack stack(Topology topology, boolean ioUring) throws IOException {
        AddressSpace mm = open(AddressSpace.create(topology));
        SoftwareDevice gpu = open(SoftwareDevice.create("gpu1", topology));
        SoftwareDevice nic = open(ioUring ? SoftwareDevice.create("nic0", topology) : SoftwareDevice.withWorkerReads("nic0", topology));
        ExportedMemory exported = open(gpu.export(SIZE));
        Xorshift.seeded(11).fill(exported.memory());
        return new Stack(topology, mm, gpu, nic, exported, exported.memory().toArray(ValueLayout.JAVA_BYTE));
    }

    Stack stack(Topology topology) throws IOException {
        return stack(topology, true);
    }

    static List<Segment> segments(Binding b) {
        List<Segment> all = new ArrayList<>();
        for (DeviceMapping m : b.liveMappings()) all.addAll(m.segments());
        return all;
    }

    @ParameterizedTest(name = "io_uring {0}")
    @ValueSource(booleans = {true, false})
    void anImporterReadsTheExportersMemoryPeerToPeer(boolean ioUring) throws IOException {
        Stack s = stack(Topology.defaults(), ioUring);
        assertTrue(s.exported().node().toString().matches("/proc/\\d+/fd/\\d+"), "a device file any process can open: " + s.exported().node());
        Vma vma = open(s.exported().mmap(s.mm()));
        assertSame(s.exported().ops(), vma.ops(), "the vma's vm operations are the exporter's");
        assertEquals(SIZE, vma.length());
        Binding b = open(s.nic().bind(vma, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED));
        DeviceMemory.Buffer dst = open(s.nic().allocate("p2p", SIZE));

        Binding.Read r = b.read(0, SIZE, dst.segment(), done -> { });
        assertArrayEquals(s.pattern(), dst.segment().toArray(ValueLayout.JAVA_BYTE), "nic0 holds gpu1's bytes, byte for byte");
        assertEquals(SIZE, r.directBytes(), "every byte went peer to peer");
        assertEquals(0, r.fallbackBytes());

        List<Segment> segs = segments(b);
        assertEquals(SIZE / WINDOW, segs.size(), "one direct segment per window: " + segs);
        Topology.Endpoint gpu = s.gpu().endpoint();
        for (Segment seg : segs) {
            Segment.Direct d = assertInstanceOf(Segment.Direct.class, seg);
            assertEquals(s.exported().node(), d.peer().node(), "read from gpu1's memory");
            assertEquals(1, d.peer().readAlignment());
            assertEquals(gpu.busAddress(d.start()), d.busAddress(), "at gpu1's bus address for the offset");
            assertEquals(d.start(), d.deviceOffset());
        }
        IommuTable.Entry e = s.nic().table().translate(vma.address() + 2 * WINDOW);
        var target = assertInstanceOf(IommuTable.Target.Peer.class, e.target());
        assertEquals(gpu.busAddress(2 * WINDOW), target.busAddress(), "nic0's table reaches gpu1's aperture");
        assertEquals(Topology.Endpoint.class, s.topology().route(target.busAddress()).orElseThrow().getClass());
        assertEquals("gpu1", s.topology().route(target.busAddress()).orElseThrow().name(), "the bus routes the address to gpu1");
        assertEquals(SIZE, s.gpu().apertureUsed(), "the live mappings hold gpu1's aperture");
        assertEquals(SIZE / WINDOW, s.exported().liveMappings());

        b.close();
        assertEquals(0, s.gpu().apertureUsed(), "unmapping gave the aperture back");
        assertEquals(0, s.exported().liveMappings());
    }

    @Test
    void withoutAPeerToPeerPathTheBytesBounceThroughHostMemoryWithTheExportersReason() throws IOException {
        Stack s = stack(Topology.parse("no-p2p gpu1 nic0\n", "test topology"));
        Vma vma = open(s.exported().mmap(s.mm()));
        Binding b = open(s.nic().bind(vma, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED));
        DeviceMemory.Buffer dst = open(s.nic().allocate("p2p", SIZE));

        Binding.Read r = b.read(0, SIZE, dst.segment(), done -> { });
        assertArrayEquals(s.pattern(), dst.segment().toArray(ValueLayout.JAVA_BYTE), "the same bytes, through host memory");
        assertEquals(0, r.directBytes());
        assertEquals(SIZE, r.fallbackBytes(), "every byte bounced");
        for (Segment seg : segments(b)) {
            Segment.Fallback f = assertInstanceOf(Segment.Fallback.class, seg);
            assertSame(ExporterReason.NO_P2P_PATH, f.refusal().reason());
            assertSame(Refuser.EXPORTER, f.refusal().reason().refuser());
            assertEquals("no_p2p_path", f.refusal().reason().code());
            String d = f.refusal().detail();
            assertTrue(d.contains("nic0") && d.contains("gpu1") && d.contains("test topology"), d);
        }
        assertInstanceOf(IommuTable.Target.HostPages.class, s.nic().table().translate(vma.address()).target());
        assertEquals(0, s.gpu().apertureUsed(), "a refusal holds no aperture");
    }

    @Test
    void aFullApertureGrantsWhatFitsAndRefusesTheRest() throws IOException {
        Stack s = stack(Topology.parse("bar gpu1 1536K\n", "test topology"));
        Vma vma = open(s.exported().mmap(s.mm()));
        Binding b = open(s.nic().bind(vma, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED));
        DeviceMemory.Buffer dst = open(s.nic().allocate("p2p", SIZE));

        Binding.Read r = b.read(0, SIZE, dst.segment(), done -> { });
        assertArrayEquals(s.pattern(), dst.segment().toArray(ValueLayout.JAVA_BYTE));
        assertEquals(1536 << 10, r.directBytes(), "what the aperture holds went direct");
        assertEquals(SIZE - (1536 << 10), r.fallbackBytes());
        assertEquals(1536 << 10, s.gpu().apertureUsed());
        Segment.Fallback f = (Segment.Fallback) segments(b).stream().filter(x -> x instanceof Segment.Fallback).findFirst().orElseThrow();
        assertSame(ExporterReason.APERTURE_FULL, f.refusal().reason());
        assertTrue(f.refusal().detail().contains("gpu1's aperture of 1.50 MiB"), f.refusal().detail());

        // With the aperture full, a request gets no part of it, and says so.
        DeviceMapping none = vma.ops().deviceMap(vma, new MapRequest(s.nic().endpoint(), 0, SIZE, Set.of(), MapMode.ALL_OR_NOTHING));
        assertSame(ExporterReason.APERTURE_FULL, ((Segment.Fallback) none.segments().getFirst()).refusal().reason());
        vma.ops().deviceUnmap(vma, s.nic().endpoint(), none);

        b.close();
        assertEquals(0, s.gpu().apertureUsed(), "every byte of aperture is free again");

        // All or nothing: the importer takes no part of a range the aperture cannot hold whole, and holds none of it.
        DeviceMapping whole = vma.ops().deviceMap(vma, new MapRequest(s.nic().endpoint(), 0, SIZE, Set.of(), MapMode.ALL_OR_NOTHING));
        assertEquals(0, whole.directBytes());
        assertEquals(1, whole.segments().size());
        assertSame(ExporterReason.ALL_OR_NOTHING, ((Segment.Fallback) whole.segments().getFirst()).refusal().reason());
        assertSame(Refuser.IMPORTER, ExporterReason.ALL_OR_NOTHING.refuser());
        assertEquals(0, s.gpu().apertureUsed());
        vma.ops().deviceUnmap(vma, s.nic().endpoint(), whole);
    }

    @Test
    void flagsTheExporterDoesNotServeAreRefusedEachWithItsReason() throws IOException {
        Stack s = stack(Topology.defaults());
        SoftwareDevice gpu0 = open(SoftwareDevice.create("gpu0", s.topology()));
        Vma vma = open(s.exported().mmap(s.mm()));
        record Case(Set<MapFlag> flags, ExporterReason reason) {}
        for (Case c : List.of(new Case(Set.of(MapFlag.SUPPORT_ATOMIC_OP), ExporterReason.NO_ATOMICS_ON_PATH),
                new Case(Set.of(MapFlag.WRITE), ExporterReason.WRITE_NOT_SUPPORTED),
                new Case(Set.of(MapFlag.PIN), ExporterReason.PIN_NOT_SUPPORTED))) {
            DeviceMapping m = vma.ops().deviceMap(vma, new MapRequest(gpu0.endpoint(), 0, SIZE, c.flags(), MapMode.MIXED));
            Segment.Fallback f = assertInstanceOf(Segment.Fallback.class, m.segments().getFirst());
            assertSame(c.reason(), f.refusal().reason(), c.toString());
            assertFalse(f.refusal().detail().isEmpty());
            vma.ops().deviceUnmap(vma, gpu0.endpoint(), m);
        }
        // With the path's atomics in the topology, the atomic request goes direct.
        Topology withAtomics = Topology.parse("atomics gpu0 gpu1\n", "test topology");
        SoftwareDevice gpu1b = open(SoftwareDevice.create("gpu1", withAtomics));
        SoftwareDevice gpu0b = open(SoftwareDevice.create("gpu0", withAtomics));
        ExportedMemory e = open(gpu1b.export(SIZE));
        Vma v2 = open(e.mmap(s.mm()));
        DeviceMapping m = v2.ops().deviceMap(v2, new MapRequest(gpu0b.endpoint(), 0, SIZE, Set.of(MapFlag.SUPPORT_ATOMIC_OP), MapMode.MIXED));
        assertEquals(SIZE, m.directBytes());
        v2.ops().deviceUnmap(v2, gpu0b.endpoint(), m);
    }

    @Test
    void freeingUnderALivePeerMappingWaitsForTheImporterToLetGoFirst() throws IOException {
        Stack s = stack(Topology.defaults());
        ExportedMemory exported = s.exported();
        Vma vma = open(exported.mmap(s.mm()));
        MemorySegment source = exported.memory();
        long gpuFree = s.gpu().memoryFree();
        List<String> seenAtLetGo = new CopyOnWriteArrayList<>();
        Binding b = open(s.nic().bind(vma, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED)
                .onLetGo(l -> seenAtLetGo.add(l.invalidation().cause() + " freed=" + exported.isFreed()
                        + " budget=" + (s.gpu().memoryFree() == gpuFree) + " memory=" + memoryStillThere(source, s.pattern()))));
        DeviceMemory.Buffer dst = open(s.nic().allocate("p2p", SIZE));
        b.read(0, SIZE, dst.segment(), done -> { });
        assertEquals(SIZE / WINDOW, exported.liveMappings());
        Path node = exported.node();

        exported.free();

        assertEquals(SIZE / WINDOW, b.invalidations(), "each of nic0's windows was told");
        assertEquals(SIZE / WINDOW, seenAtLetGo.size(), seenAtLetGo.toString());
        for (String at : seenAtLetGo) {
            assertEquals(Invalidation.Cause.RECLAIMED + " freed=false budget=true memory=true", at,
                    "each window let go while the memory was still there, unfreed and holding its bytes");
        }
        assertTrue(exported.isFreed());
        assertEquals(0, exported.liveMappings());
        assertEquals(0, exported.revokedMappings(), "nic0 let go by itself: nothing had to be revoked");
        assertEquals(0, s.gpu().apertureUsed());
        assertEquals(0, s.nic().table().size(), "nic0's table reaches nothing of gpu1 any more");
        assertEquals(gpuFree + SIZE, s.gpu().memoryFree(), "the memory went back to gpu1's budget");
        assertEquals(List.of(), s.gpu().exports());
        assertThrows(IllegalStateException.class, exported::memory);
        assertFalse(memoryStillThere(source, s.pattern()), "the exporter's own mapping of the memory is gone");
        MemorySegment probe = dst.segment().asSlice(0, WINDOW);
        assertEquals(0, ((ExportedMemory.DeviceFile) vma.file()).handle().preadFully(probe, 0), "the device file a program still maps holds no page of it");

        // A read after the free faults again, and the exporter refuses it: it fails, naming the device file.
        dst.segment().fill((byte) 0);
        IOException x = assertThrows(IOException.class, () -> b.read(0, SIZE, dst.segment(), done -> { }));
        assertTrue(x.getMessage().contains(node.toString()) && x.getMessage().contains("freed"), x.getMessage());
        assertTrue(MemorySegment.ofArray(new byte[(int) SIZE]).mismatch(dst.segment()) == -1, "nothing was delivered");
        assertThrows(IOException.class, () -> exported.mmap(s.mm()), "a freed export cannot be mapped again");
        exported.free();   // idempotent
    }

    /** True while source is mapped and holds the pattern's first and last bytes. */
    static boolean memoryStillThere(MemorySegment source, byte[] pattern) {
        try {
            return source.get(ValueLayout.JAVA_BYTE, 0) == pattern[0]
                    && source.get(ValueLayout.JAVA_BYTE, pattern.length - 1) == pattern[pattern.length - 1];
        } catch (IllegalStateException closed) {
            return false;
        }
    }

    @Test
    void readsRacingAFreeDeliverTheExportedBytesOrFailNeverOtherBytes() throws Exception {
        Stack s = stack(Topology.parse("bar gpu1 2M\n", "test topology"));   // half direct, half bounced
        Vma vma = open(s.exported().mmap(s.mm()));
        Binding b = open(s.nic().bind(vma, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED));
        DeviceMemory.Buffer dst = open(s.nic().allocate("p2p", SIZE));
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong good = new AtomicLong();
        List<Throwable> wrong = new CopyOnWriteArrayList<>();
        Thread reader = Thread.ofPlatform().name("p2p-reader").start(() -> {
            while (!stop.get()) {
                dst.segment().fill((byte) 0);
                try {
                    b.read(0, SIZE, dst.segment(), done -> { });
                } catch (IOException failed) {
                    if (!failed.getMessage().contains("freed")) wrong.add(failed);
                    continue;
                } catch (Throwable t) {
                    wrong.add(t);
                    return;
                }
                if (MemorySegment.ofArray(s.pattern()).mismatch(dst.segment()) != -1) {
                    wrong.add(new AssertionError("a read delivered bytes that are not gpu1's"));
                } else {
                    good.incrementAndGet();
                }
            }
        });
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            while (good.get() < 3 && wrong.isEmpty() && reader.isAlive()) Thread.sleep(1);
            s.exported().free();
            stop.set(true);
            reader.join();
        });
        assertEquals(List.of(), wrong);
        assertTrue(good.get() >= 3, "reads delivered before the free: " + good.get());
        assertEquals(0, s.gpu().apertureUsed());
        assertEquals(0, s.exported().liveMappings());
    }

    @Test
    void anImporterThatDoesNotLetGoIsRevokedAndTheMemoryIsStillFreedSafely() throws IOException {
        Stack s = stack(Topology.defaults());
        ExportedMemory exported = s.exported();
        Vma vma = open(exported.mmap(s.mm()));
        Binding b = open(s.nic().bind(vma, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED));
        DeviceMemory.Buffer dst = open(s.nic().allocate("p2p", SIZE));
        b.read(0, SIZE, dst.segment(), done -> { });
        Path node = exported.node();

        try (var _ = Faults.enable(FaultPoint.INVALIDATE_THROWS)) {
            assertTimeoutPreemptively(Duration.ofSeconds(10), exported::free);
        }
        assertTrue(exported.isFreed());
        assertEquals(SIZE / WINDOW, exported.revokedMappings(), "nic0 never acknowledged: each mapping was revoked");
        assertEquals(0, exported.liveMappings());
        assertEquals(0, s.gpu().apertureUsed());

        // nic0 still holds its table entries, but the mapping is dead and the memfd closed: the read fails, naming the device file.
        dst.segment().fill((byte) 0);
        IOException x = assertThrows(IOException.class, () -> b.read(0, SIZE, dst.segment(), done -> { }));
        assertTrue(x.getMessage().contains(node.toString()) && x.getMessage().contains("freed"), x.getMessage());
        assertEquals(-1, MemorySegment.ofArray(new byte[(int) SIZE]).mismatch(dst.segment()), "nothing was delivered");
    }

    @Test
    void closingTheExporterWhileMappedTakesEveryMappingBackFirst() throws IOException {
        Stack s = stack(Topology.defaults());
        ExportedMemory exported = s.exported();
        Vma vma = open(exported.mmap(s.mm()));
        List<Boolean> freedAtLetGo = new CopyOnWriteArrayList<>();
        Binding b = open(s.nic().bind(vma, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED)
                .onLetGo(l -> freedAtLetGo.add(exported.isFreed())));
        DeviceMemory.Buffer dst = open(s.nic().allocate("p2p", SIZE));
        b.read(0, SIZE, dst.segment(), done -> { });

        s.gpu().close();

        assertTrue(exported.isFreed(), "closing gpu1 freed what it exported");
        assertEquals(List.of(false, false, false, false), freedAtLetGo, "every window let go before the memory went");
        assertEquals(0, exported.liveMappings());
        IOException x = assertThrows(IOException.class, () -> b.read(0, WINDOW, dst.segment(), done -> { }));
        assertTrue(x.getMessage().contains("freed"), x.getMessage());
        assertThrows(IllegalStateException.class, () -> s.gpu().export(SIZE), "a closed device exports nothing");
        vma.close();   // munmap of a vma whose exporter is gone still works
    }

    @Test
    void theExporterMovingARangeTakesItsMappingsBackAndTheImporterFaultsAgain() throws IOException {
        Stack s = stack(Topology.defaults());
        Vma vma = open(s.exported().mmap(s.mm()));
        Binding b = open(s.nic().bind(vma, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED));
        DeviceMemory.Buffer dst = open(s.nic().allocate("p2p", SIZE));
        b.read(0, SIZE, dst.segment(), done -> { });

        assertEquals(1, s.exported().invalidate(WINDOW, 2 * WINDOW, "compaction"), "one window's mapping overlapped");
        assertEquals(1, b.invalidations());
        assertEquals(SIZE / WINDOW - 1, s.exported().liveMappings());
        MemorySegment moved = s.exported().memory().asSlice(WINDOW, WINDOW);
        moved.fill((byte) 0x5a);
        b.read(0, SIZE, dst.segment(), done -> { });
        assertEquals(-1, moved.mismatch(dst.segment().asSlice(WINDOW, WINDOW)), "the re-faulted window read the bytes now there");
        assertEquals(1, b.refaults());
    }

    @Test
    void munmapReleasesWhatTheExporterHandedOut() throws IOException {
        Stack s = stack(Topology.defaults());
        Vma vma = s.exported().mmap(s.mm());
        DeviceMapping m = vma.ops().deviceMap(vma, new MapRequest(s.nic().endpoint(), 0, SIZE));
        assertEquals(SIZE, m.directBytes());
        assertEquals(1, vma.liveDeviceMappings());
        vma.close();
        assertFalse(m.isLive(), "munmap released the exporter's mapping");
        assertEquals(0, s.exported().liveMappings());
        assertEquals(0, s.gpu().apertureUsed());
    }

    @Test
    void anExportBeyondTheDevicesMemoryIsRefusedWithWhatFits() throws IOException {
        Topology t = Topology.defaults();
        SoftwareDevice nic = open(SoftwareDevice.create("nic3", t));
        String m = assertThrows(InvalidRequestException.class, () -> nic.export(2L << 30)).getMessage();
        assertTrue(m.contains("nic3") && m.contains("2 GiB") && m.contains("1 GiB"), m);
        assertThrows(InvalidRequestException.class, () -> nic.export(0));
        assertEquals(1L << 30, nic.memoryFree(), "nothing was taken from the budget");

        try (var _ = Faults.enable(FaultPoint.DEVICE_ALLOC_FAIL)) {
            io.directmap.sys.SysException x = assertThrows(io.directmap.sys.SysException.class, () -> nic.export(SIZE));
            assertEquals("ENOMEM", x.errnoName());
            assertTrue(x.getMessage().contains("nic3"), x.getMessage());
        }
        assertEquals(1L << 30, nic.memoryFree(), "a failed export takes nothing from the budget");
        assertEquals(List.of(), nic.exports());
    }

    @Test
    void aDmaReadTheEngineGaveUpOnKeepsTheMemoryAndFreeFailsInBoundedTimeSayingSo() throws IOException {
        Stack s = stack(Topology.defaults(), true);
        Assumptions.assumeTrue(s.nic().engine().usesIoUring(), "this system has no io_uring");
        ExportedMemory exported = s.exported();
        Vma vma = open(exported.mmap(s.mm()));
        Binding b = open(s.nic().bind(vma, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED));
        DeviceMemory.Buffer dst = open(s.nic().allocate("p2p", SIZE));
        b.read(0, SIZE, dst.segment(), done -> { });
        assertEquals(SIZE / WINDOW, exported.liveMappings(), "nic0 reads gpu1's memfd peer to peer");
        Path node = exported.node();
        long gpuFree = s.gpu().memoryFree();

        // nic0's ring takes the reads of the memfd, then io_uring_enter fails for good: the engine gives
        // up waiting, sets its memory aside and keeps holding the memfd (it never ends those reads).
        AtomicInteger waits = new AtomicInteger();
        s.nic().engine().ringWait = ring -> {
            if (waits.incrementAndGet() == 1) ring.submitAndWait(0);
            throw new SysException("io_uring_enter", "test", Errno.EBADF, "");
        };
        try {
            IOException e = assertThrows(IOException.class, () -> b.read(0, SIZE, dst.segment(), done -> { }));
            assertInstanceOf(DmaInFlightException.class, e, e.toString());
        } finally {
            s.nic().engine().ringWait = ring -> ring.submitAndWait(1);
        }

        exported.readerWait = Duration.ofMillis(300);
        IOException x = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> assertThrows(IOException.class, exported::free),
                "free waits a bounded time for reads an engine gave up on");
        String m = x.getMessage();
        assertTrue(m.contains(node.toString()) && m.contains("set aside") && m.contains("kept until the process exits")
                && m.contains("1 DMA read(s)"), m);
        assertFalse(exported.isFreed(), "memory DMA may still read is not freed");
        assertEquals(gpuFree, s.gpu().memoryFree(), "nor given back to gpu1's budget");
        assertEquals(SIZE, Files.size(node), "the memfd is neither truncated nor closed: its descriptor number is not reused");
        assertEquals(0, exported.liveMappings(), "every peer mapping was taken back all the same");
        assertThrows(IllegalStateException.class, exported::memory, "memory that was set aside is not used again");
        assertThrows(IOException.class, () -> exported.mmap(s.mm()), "nor mapped again");

        IOException again = assertTimeoutPreemptively(Duration.ofSeconds(5), () -> assertThrows(IOException.class, exported::free),
                "a second free does not hang either");
        assertEquals(m, again.getMessage());
        assertEquals(List.of(), s.gpu().exports(), "gpu1 no longer lists it");
        assertTimeoutPreemptively(Duration.ofSeconds(5), () -> s.gpu().close(), "closing gpu1 does not hang");
        opened.remove(exported);
        keptOnPurpose = 1;   // the memfd stays open until the process exits
    }

    @Test
    void onceFreedTheDeviceFileIsNotGivenOutAndCannotBeMapped() throws IOException {
        Stack s = stack(Topology.defaults());
        ExportedMemory exported = s.exported();
        Path node = exported.node();
        exported.free();

        IllegalStateException e = assertThrows(IllegalStateException.class, exported::node);
        assertTrue(e.getMessage().contains("gpu1") && e.getMessage().contains("freed") && e.getMessage().contains(node.toString())
                && e.getMessage().contains("reused"), e.getMessage());
        IOException x = assertThrows(IOException.class, () -> exported.mmap(s.mm()));
        assertTrue(x.getMessage().contains(node.toString()) && x.getMessage().contains("freed"), x.getMessage());
    }

    @Test
    void aDeviceFileNumberThatNowNamesAnotherFileIsRefused() throws IOException {
        Stack s = stack(Topology.defaults());
        Statx.Info memfd = Statx.of(s.exported().buffer().descriptor());
        try (FileHandle mine = FileHandle.openRead(s.exported().node())) {
            ExportedMemory.checkSameFile(s.exported().node(), mine, memfd);   // the memfd itself passes
        }
        Path other = Files.createTempFile("not-the-memfd", ".bin");
        try (FileHandle h = FileHandle.openRead(other)) {
            Path reused = Path.of("/proc/" + ProcessHandle.current().pid() + "/fd/" + h.fd());
            IOException x = assertThrows(IOException.class, () -> ExportedMemory.checkSameFile(reused, h, memfd));
            assertTrue(x.getMessage().contains(reused.toString()) && x.getMessage().contains("another file")
                    && x.getMessage().contains("reused") && x.getMessage().contains("nothing is mapped"), x.getMessage());
        } finally {
            Files.delete(other);
        }
    }

    @Test
    void whenTakingTheMappingsBackAndClosingTheMemfdBothFailBothAreReported() throws IOException {
        Stack s = stack(Topology.defaults());
        ExportedMemory exported = s.exported();
        Vma vma = open(exported.mmap(s.mm()));
        Binding b = open(s.nic().bind(vma, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED));
        DeviceMemory.Buffer dst = open(s.nic().allocate("p2p", SIZE));
        b.read(0, SIZE, dst.segment(), done -> { });

        // Taking back fails: nic0 does not let go, and reporting that fails too (a log handler that throws).
        RuntimeException logFailed = new IllegalStateException("the log sink is full");
        Handler throwing = new Handler() {
            @Override public void publish(LogRecord r) { throw logFailed; }
            @Override public void flush() { }
            @Override public void close() { }
        };
        Logger log = Logger.getLogger("io.directmap");
        // Closing the memfd fails: its descriptor is closed already.
        exported.buffer().descriptor().close();
        log.addHandler(throwing);
        Throwable x;
        try (var _ = Faults.enable(FaultPoint.INVALIDATE_THROWS)) {
            x = assertThrows(Throwable.class, exported::free);
        } finally {
            log.removeHandler(throwing);
        }
        assertSame(logFailed, x, "the first failure is thrown");
        assertEquals(1, x.getSuppressed().length, List.of(x.getSuppressed()).toString());
        IllegalStateException close = assertInstanceOf(IllegalStateException.class, x.getSuppressed()[0]);
        assertTrue(close.getMessage().contains("freeing gpu1's exported memory"), close.getMessage());
        assertTrue(exported.isFreed(), "the memory was freed all the same");
        assertEquals(List.of(), s.gpu().exports());
    }

    @Test
    void afterFreeTheCpusOwnAccessToTheVmaFaults() throws IOException {
        Stack s = stack(Topology.defaults());
        Vma vma = open(s.exported().mmap(s.mm()));
        MemorySegment pages = vma.pages();
        assertEquals(s.pattern()[0], pages.get(ValueLayout.JAVA_BYTE, 0), "the vma maps the exported bytes");
        s.exported().free();
        assertThrows(InternalError.class, () -> pages.get(ValueLayout.JAVA_BYTE, 0),
                "the memfd was truncated: the page is gone and the access faults (SIGBUS)");
    }
}
