package io.directmap.mm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.IommuTable;
import io.directmap.device.SoftwareDevice;
import io.directmap.pci.Topology;
import io.directmap.sys.FileHandle;
import io.directmap.sys.Mmap;
import io.directmap.sys.Process;
import io.directmap.sys.SysException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The device_map contract stands on its own: an exporter written here, with no filesystem and no
 * block device (this test names neither package), implements {@link VmOperations} over the bytes
 * of an ordinary file, and a {@link SoftwareDevice} that binds a vma of it reads what the exporter
 * decided: its even pages straight from its own {@link Peer}, its odd pages through the page cache
 * because it refused them ({@link Refuser#EXPORTER}, with its own {@link Reason}); and an
 * invalidation it raises through the vma's {@link MappingOwner} reaches the device's windows.
 */
class FakeExporterContractTest {
    static final long PAGE = Process.PAGE_SIZE;
    static final int PAGES = 16;
    static final long SIZE = PAGES * PAGE;
    static final long BUS = 0x4000_0000L;

    /** The fake exporter's one reason to refuse. */
    enum FakeReason implements Reason {
        ODD_PAGE;

        @Override public Refuser refuser() { return Refuser.EXPORTER; }
        @Override public String code() { return name().toLowerCase(Locale.ROOT); }
        @Override public String summary() { return "the fake exporter maps only even pages"; }
        /** Its refused pages are hot in the page cache: what the importer reports back. */
        @Override public Optional<Transfer> transfer() { return Optional.of(Transfer.CACHE_HOT); }
    }

    /** A peer over a descriptor of an ordinary file: alignment 1, no O_DIRECT. */
    static final class FilePeer implements Peer {
        final Path file;
        final FileHandle handle;
        final AtomicInteger reads = new AtomicInteger();
        int readers;   // guarded by this
        boolean closed;

        FilePeer(Path file) throws SysException {
            this.file = file;
            this.handle = FileHandle.openRead(file);
        }

        @Override public String name() { return "fake0"; }
        @Override public Path node() { return file; }
        @Override public int readAlignment() { return 1; }

        @Override
        public synchronized int descriptor() {
            if (readers == 0) throw new IllegalStateException("descriptor() outside beginDirectRead/endDirectRead");
            try {
                return handle.fd();
            } catch (SysException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public synchronized boolean beginDirectRead() {
            if (closed) return false;
            readers++;
            reads.incrementAndGet();
            return true;
        }

        @Override
        public synchronized void endDirectRead() {
            readers--;
        }

        synchronized void close() throws SysException {
            closed = true;
            handle.close();
        }
    }

    /** What the vma maps: the same file, read-only. */
    record FakeFile(Path path, FileHandle handle) implements MappedFile {
        @Override public long size() { return SIZE; }
        @Override public MemorySegment mapShared(Arena arena) throws SysException { return Mmap.mapShared(handle, SIZE, arena); }
        @Override public void close() throws SysException { handle.close(); }
    }

    /** The fake's own mapping: nothing but the contract's view. */
    static final class FakeMapping implements DeviceMapping {
        final long id;
        final MapRequest request;
        final List<Segment> segments;
        volatile boolean live = true;

        FakeMapping(long id, MapRequest request, List<Segment> segments) {
            this.id = id;
            this.request = request;
            this.segments = List.copyOf(segments);
        }

        @Override public long id() { return id; }
        @Override public MapRequest request() { return request; }
        @Override public List<Segment> segments() { return segments; }
        @Override public boolean isLive() { return live; }
        @Override public boolean coherent() { return true; }
        @Override public long decisionNanos() { return 0; }
        @Override public String toString() { return "fake mapping " + id + " [" + start() + ", " + end() + ")"; }
    }

    /** The exporter: direct for even pages from its peer, a refusal for odd ones; it tracks what it handed out. */
    static final class FakeExporter implements VmOperations {
        final FilePeer peer;
        final List<FakeMapping> live = new ArrayList<>();
        final List<FakeMapping> made = new ArrayList<>();
        final List<Transfer> observed = new ArrayList<>();
        final AtomicInteger unmaps = new AtomicInteger();

        FakeExporter(FilePeer peer) {
            this.peer = peer;
        }

        @Override
        public MemorySegment fault(Vma vma, long offset, long length) {
            return vma.pages().asSlice(offset, length);
        }

        @Override
        public synchronized DeviceMapping deviceMap(Vma vma, MapRequest request) {
            List<Segment> segments = new ArrayList<>();
            for (long at = request.start(); at < request.end(); at += PAGE) {
                long page = at / PAGE;
                segments.add(page % 2 == 0
                        ? new Segment.Direct(at, at + PAGE, peer, at, BUS + at, "fake0")
                        : new Segment.Fallback(at, at + PAGE, new Refusal(FakeReason.ODD_PAGE, "page " + page)));
            }
            FakeMapping m = new FakeMapping(made.size() + 1, request, segments);
            made.add(m);
            live.add(m);
            vma.onUnmap(m, () -> release(m));
            return m;
        }

        @Override
        public boolean verify(Vma vma, DeviceMapping mapping, long start, long end, boolean readFailed) {
            return mapping.isLive();
        }

        @Override
        public synchronized void observe(Vma vma, Transfer transfer, long bytes, long nanos) {
            observed.add(transfer);
        }

        @Override
        public void deviceUnmap(Vma vma, io.directmap.pci.Topology.Endpoint importer, DeviceMapping mapping) {
            if (!(mapping instanceof FakeMapping m)) throw new IllegalArgumentException(mapping + " is not the fake's");
            vma.forget(m);
            release(m);
        }

        private synchronized void release(FakeMapping m) {
            if (!m.live) return;
            m.live = false;
            live.remove(m);
            unmaps.incrementAndGet();
        }

        /** The exporter's bytes change: it takes back every mapping of [start, end) through the vma's owner. */
        void change(Vma vma, Path file, byte[] now, long start, long end) throws IOException {
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(now), 0);
            }
            vma.owner().invalidate(Invalidation.of(start, end, Invalidation.Cause.CHANGED, "the fake exporter's bytes changed", true));
        }

        synchronized List<FakeMapping> live() { return List.copyOf(live); }
    }

    @TempDir Path dir;
    Path file;
    AddressSpace mm;
    SoftwareDevice gpu;
    FilePeer peer;
    FakeExporter exporter;

    @BeforeEach
    void open() throws IOException {
        file = dir.resolve("exported.bin");
        Files.write(file, pattern(1));
        mm = AddressSpace.create(Topology.defaults());
        gpu = SoftwareDevice.create("gpu0", mm.topology());
        peer = new FilePeer(file);
        exporter = new FakeExporter(peer);
    }

    @AfterEach
    void close() throws IOException {
        gpu.close();
        mm.close();
        peer.close();
    }

    @Test
    void aDeviceReadsWhatAnExporterWithoutFilesystemOrBlockDeviceDecided() throws IOException {
        Vma vma = mm.mmap(new FakeFile(file, FileHandle.openRead(file)), exporter);
        try (Binding b = gpu.bind(vma, 0, SIZE, 4 * PAGE, Set.of(), MapMode.MIXED);
             DeviceMemory.Buffer buf = gpu.allocate(file.toString(), SIZE)) {
            Binding.Read r = b.read(0, SIZE, buf.segment(), done -> { });
            assertArrayEquals(pattern(1), bytes(buf.segment()), "device memory holds the exported bytes, byte for byte");
            assertEquals(SIZE / 2, r.directBytes(), "the even pages were read directly");
            assertEquals(SIZE / 2, r.fallbackBytes(), "the odd pages through the page cache");
            assertTrue(peer.reads.get() > 0, "the DMA engine read through the exporter's peer");

            List<FakeMapping> mappings = exporter.live();
            assertEquals(4, mappings.size(), "one mapping per window: " + mappings);
            for (FakeMapping m : mappings) {
                for (Segment s : m.segments()) {
                    if (s instanceof Segment.Fallback f) {
                        assertSame(FakeReason.ODD_PAGE, f.refusal().reason());
                        assertEquals("exporter", f.refusal().reason().refuser().label());
                        assertEquals(1, s.start() / PAGE % 2, "only odd pages refused: " + s);
                    } else {
                        assertEquals(0, s.start() / PAGE % 2, "only even pages direct: " + s);
                    }
                }
            }
            IommuTable.Entry even = gpu.table().translate(vma.address() + 2 * PAGE);
            var target = assertInstanceOf(IommuTable.Target.Peer.class, even.target());
            assertSame(peer, target.device(), "the table reaches the exporter's own peer");
            assertEquals(BUS + 2 * PAGE, target.busAddress());
            assertInstanceOf(IommuTable.Target.HostPages.class, gpu.table().translate(vma.address() + 3 * PAGE).target());

            // A one-way DMA is reported with the exporter's own word for the way: its refusal says cache, hot.
            b.read(PAGE, PAGE, buf.segment().asSlice(0, PAGE), done -> { });
            assertTrue(exporter.observed.contains(Transfer.CACHE_HOT), "observed " + exporter.observed);
            b.read(2 * PAGE, PAGE, buf.segment().asSlice(0, PAGE), done -> { });
            assertTrue(exporter.observed.contains(Transfer.DIRECT), "observed " + exporter.observed);

            // The exporter changes its bytes and takes its mappings back: every window lets go, then reads anew.
            assertEquals(0, b.invalidations());
            exporter.change(vma, file, pattern(2), 0, SIZE);
            assertEquals(4, b.invalidations(), "each window was told");
            assertEquals(List.of(), exporter.live(), "each window gave its mapping back");
            assertEquals(4, exporter.unmaps.get());
            assertEquals(0, gpu.table().size(), "the table holds nothing of the taken-back mappings");

            buf.segment().fill((byte) 0);
            b.read(0, SIZE, buf.segment(), done -> { });
            assertArrayEquals(pattern(2), bytes(buf.segment()), "the device read the new bytes the exporter now exports");
            assertEquals(8, exporter.made.size(), "each window asked device_map again");
        } finally {
            vma.close();
        }
        assertEquals(List.of(), exporter.live(), "munmap left nothing mapped");
    }

    @Test
    void munmapReleasesWhatTheExporterHandedOut() throws IOException {
        Vma vma = mm.mmap(new FakeFile(file, FileHandle.openRead(file)), exporter);
        DeviceMapping m = vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), 0, SIZE));
        assertEquals(PAGES / 2 * PAGE, m.directBytes());
        assertEquals(PAGES / 2 * PAGE, m.fallbackBytes());
        assertEquals(1, vma.liveDeviceMappings());
        vma.close();
        assertTrue(!m.isLive(), "munmap released the exporter's mapping");
        assertEquals(List.of(), exporter.live());
    }

    @Test
    void anAddressSpaceWithoutFilesystemRefusesAPathByName() {
        String msg = assertThrows(InvalidRequestException.class, () -> mm.mmap(file)).getMessage();
        assertTrue(msg.contains(file.toString()) && msg.contains("no filesystem"), msg);
    }

    /** SIZE bytes that differ for every seed and page. */
    static byte[] pattern(int seed) {
        byte[] b = new byte[(int) SIZE];
        for (int i = 0; i < b.length; i++) b[i] = (byte) (i * 31 + seed * 7 + i / PAGE);
        return b;
    }

    static byte[] bytes(MemorySegment s) {
        return s.asSlice(0, SIZE).toArray(ValueLayout.JAVA_BYTE);
    }
}
