package io.directmap.mm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Binding;
import io.directmap.device.DeviceAccess;
import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.sys.FileHandle;
import io.directmap.testing.Bytes;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.management.ObjectName;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * 100,000 device_map / device_unmap cycles on a loop-mounted ext4 (the direct path: a read lease,
 * FIEMAP, cachestat, the block device's aperture) leak no descriptor and no native memory; nor do
 * fewer whole accesses (mmap, device_map, DMA into device memory, device_unmap, munmap) and
 * bindings (bind, read, close).
 *
 * <p>What is measured, after a warm-up, before and after the cycles:
 * <ul>
 *   <li>descriptors: the entries of /proc/self/fd, and FileHandle.openCount() (ours exactly);
 *   <li>mappings: the lines of /proc/self/maps that map the file (exactly: a vma not unmapped
 *       shows there), and all of them (with a slack for the JVM's own);
 *   <li>direct ByteBuffers, through the "direct" buffer pool's MXBean, exactly. The JDK does not
 *       count FFM arenas there (our syscalls' structs, device memory): those are malloc'd and
 *       zero-filled, so they show in the resident memory below;
 *   <li>what device_map hands out: tracked mappings, live mappings of the vma, apertures, the
 *       IOMMU table, device memory;
 *   <li>the process's resident memory outside the Java heap and the code cache (/proc/self/smaps,
 *       the heap's range from GC.heap_info), after a GC, with a slack of 16 MiB: the only view of
 *       memory that libc or the kernel allocate for us (malloc, a leaked mmap, an io_uring). Here it
 *       moved by under 5 MiB over 150,000 cycles once warm, while the heap's resident pages swung by
 *       100 MiB (which is why the heap is left out). It catches a leak of more than about 170 bytes
 *       a device_map cycle, or 8 KiB an access.
 * </ul>
 * Not measured: kernel memory outside the process (leases, page cache, io_uring rings'
 * accounting), malloc'd memory below the slack. Native Memory Tracking would see the JVM's own
 * arenas too, but must be switched on when the JVM starts, which the shared test JVM is not.
 */
class MapUnmapLeakTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    static final int WARM_UP = 10_000, CYCLES = 100_000, ACCESSES = 1_000, BINDINGS = 1_000;
    static final long SIZE = 1 << 20;
    static final int FD_SLACK = 4;                  // sysfs files other threads (BlockWatcher) hold open for a moment
    static final int MAPPING_SLACK = 16;            // the JVM maps thread stacks, GC and JIT memory as it goes
    static final long NATIVE_SLACK = 16L << 20;     // over 100,000 cycles: about 170 bytes a cycle

    FsStack mm;
    SoftwareDevice gpu;
    Path file;

    record Usage(long fds, int handles, long mappings, long fileMappings, long directBytes, long nativeRss) {
        @Override
        public String toString() {
            return fds + " descriptors (" + handles + " FileHandles), " + mappings + " mappings (" + fileMappings
                    + " of the file), " + directBytes + " bytes of direct buffers, " + (nativeRss >> 10)
                    + " KiB resident outside the heap and the code cache";
        }
    }

    @BeforeEach
    void open() throws IOException {
        io.directmap.sys.Leases.shared();   // the lease thread's descriptors live as long as the process
        mm = FsStack.open();
        gpu = SoftwareDevice.create("gpu0", mm.topology());
        file = EXT4.file("cycled.bin");
        Workloads.write(file, 0, SIZE, 51);
        Workloads.syncAndEvict(file);
    }

    @AfterEach
    void close() throws IOException {
        gpu.close();
        mm.close();
        Files.deleteIfExists(file);
    }

    Usage usage() throws Exception {
        for (int i = 0; i < 3; i++) System.gc();
        long fds;
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            fds = s.count();
        }
        BufferPoolMXBean direct = ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
                .filter(p -> p.getName().equals("direct")).findFirst().orElseThrow();
        List<String> maps = Files.readAllLines(Path.of("/proc/self/maps"));
        String name = file.toAbsolutePath().toString();
        long ofFile = maps.stream().filter(l -> l.endsWith(name) || l.endsWith(name + " (deleted)")).count();
        return new Usage(fds, FileHandle.openCount(), maps.size(), ofFile, direct.getMemoryUsed(), nativeRss());
    }

    /**
     * Resident bytes outside the Java heap (whose pages G1 touches and lets go of by the hundred
     * MiB as it pleases) and outside the JIT's code cache (executable): malloc, thread stacks,
     * our mmaps. The heap's range is what the JVM says (GC.heap_info).
     */
    static long nativeRss() throws Exception {
        String info;
        try {
            info = (String) ManagementFactory.getPlatformMBeanServer().invoke(
                    new ObjectName("com.sun.management:type=DiagnosticCommand"), "gcHeapInfo",
                    new Object[] {null}, new String[] {String[].class.getName()});
        } catch (javax.management.JMException notHotSpot) {
            return -1;   // a JVM without HotSpot's diagnostic commands: not measured
        }
        Matcher m = Pattern.compile("\\[0x([0-9a-f]+), 0x([0-9a-f]+)\\)").matcher(info);
        if (!m.find()) return -1;   // a collector that does not print its range: not measured
        long heapStart = Long.parseUnsignedLong(m.group(1), 16), heapEnd = Long.parseUnsignedLong(m.group(2), 16);
        long total = 0;
        boolean counted = false;
        for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
            Matcher range = MAPPING.matcher(line);
            if (range.lookingAt()) {
                long start = Long.parseUnsignedLong(range.group(1), 16), end = Long.parseUnsignedLong(range.group(2), 16);
                counted = !(start < heapEnd && heapStart < end) && range.group(3).charAt(2) != 'x';
            } else if (counted && line.startsWith("Rss:")) {
                total += Long.parseLong(line.replaceAll("\\D", "")) << 10;
            }
        }
        return total;
    }

    private static final Pattern MAPPING = Pattern.compile("([0-9a-f]+)-([0-9a-f]+) ([rwxps-]{4}) ");

    void assertNoGrowth(Usage before, Usage after, String what) {
        String both = what + ": before " + before + "; after " + after;
        assertTrue(after.fds() <= before.fds() + FD_SLACK, "no descriptor leaked; " + both);
        assertEquals(before.handles(), after.handles(), "every FileHandle closed; " + both);
        assertEquals(before.fileMappings(), after.fileMappings(), "every mmap of the file was unmapped; " + both);
        assertTrue(after.mappings() <= before.mappings() + MAPPING_SLACK, "no mapping leaked; " + both);
        assertTrue(after.directBytes() <= before.directBytes(), "no direct buffer left; " + both);
        assertTrue(before.nativeRss() < 0 || after.nativeRss() <= before.nativeRss() + NATIVE_SLACK, "native resident size grew by less than the slack; " + both);
        assertEquals(List.of(), mm.fs().tracker().all(), "no mapping tracked; " + both);
        for (var dev : mm.fs().blocks().known()) assertEquals(0, dev.apertureUsed(), dev + " aperture given back; " + both);
        assertEquals(0, gpu.table().size(), "the IOMMU table is empty; " + both);
    }

    void mapAndUnmap(Vma vma, int times) throws IOException {
        for (int i = 0; i < times; i++) {
            DeviceMapping m = vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), 0, SIZE));
            vma.ops().deviceUnmap(vma, gpu.endpoint(), m);
        }
    }

    @Test
    void deviceMapAndUnmapLeakNothing() throws Exception {
        try (Vma vma = mm.mmap(file)) {
            DeviceMapping first = vma.ops().deviceMap(vma, new MapRequest(gpu.endpoint(), 0, SIZE));
            vma.ops().deviceUnmap(vma, gpu.endpoint(), first);
            assertEquals(SIZE, first.directBytes(), "the cycles go the direct way: " + first.segments());
            mapAndUnmap(vma, WARM_UP);
            Usage before = usage();
            assertEquals(1, before.fileMappings(), "the vma shows in /proc/self/maps, so a leaked one would too");
            long t0 = System.nanoTime();
            mapAndUnmap(vma, CYCLES);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(0, vma.liveDeviceMappings());
            assertNoGrowth(before, usage(), CYCLES + " device_map/device_unmap cycles in " + ms + " ms");
        }
    }

    void accessAndRelease(int times) throws IOException {
        for (int i = 0; i < times; i++) {
            try (Vma vma = mm.mmap(file); DeviceAccess a = gpu.access(vma, 0, SIZE)) {
                if (i == 0) {
                    assertEquals(SIZE, a.directBytes(), "direct: " + a.segments());
                    Bytes.assertDeviceHoldsFile(file, 0, a.memory());
                    Workloads.syncAndEvict(file);   // the check read it through the page cache
                }
            }
        }
    }

    void bindReadClose(Vma vma, DeviceMemory.Buffer buf, int times) throws IOException {
        for (int i = 0; i < times; i++) {
            try (Binding b = gpu.bind(vma, 0, SIZE, SIZE / 4, Set.of(), MapMode.MIXED)) {
                b.read(0, SIZE, buf.segment(), n -> { });
            }
        }
    }

    @Test
    void wholeAccessesAndBindingsLeakNothing() throws Exception {
        long free = gpu.memoryFree();
        accessAndRelease(ACCESSES / 10);
        Usage before = usage();
        long t0 = System.nanoTime();
        accessAndRelease(ACCESSES);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertNoGrowth(before, usage(), ACCESSES + " mmap/access/close/munmap cycles in " + ms + " ms");
        assertEquals(free, gpu.memoryFree(), "device memory given back");

        try (Vma vma = mm.mmap(file); DeviceMemory.Buffer buf = gpu.allocate(file.toString(), SIZE)) {
            bindReadClose(vma, buf, BINDINGS / 10);
            Usage b0 = usage();
            t0 = System.nanoTime();
            bindReadClose(vma, buf, BINDINGS);
            ms = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(0, vma.liveDeviceMappings());
            assertNoGrowth(b0, usage(), BINDINGS + " bind/read/close cycles of 4 windows in " + ms + " ms");
            Bytes.assertDeviceHoldsFile(file, 0, buf.segment());
        }
    }
}
