package io.directmap.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import io.directmap.fs.FsStack;
import io.directmap.fs.Policy;
import io.directmap.mm.MapMode;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.sys.Errno;
import io.directmap.sys.FileHandle;
import io.directmap.sys.IoUring;
import io.directmap.sys.SysException;
import io.directmap.testing.Bytes;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongConsumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * What each failure of a direct read leaves behind, through io_uring and through the worker
 * threads: the error a user sees (or the right bytes), the fault point fired, no hang, no read
 * still writing after the transfer returned, no stale completion for the next transfer, no
 * descriptor or device memory leaked.
 */
class DmaEngineFaultTest {
    static final long MiB = 1 << 20;
    static final long SIZE = 40 * MiB;          // 10 requests of 4 MiB: more than the queue depth of 8
    static final Duration BOUND = Duration.ofSeconds(60);

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    enum Way { RING, WORKERS }

    Path file;
    long fdsBefore;
    int handlesBefore;
    FsStack mm;
    SoftwareDevice gpu;

    @BeforeEach
    void writeFile(TestInfo info) throws IOException {
        file = EXT4.file(info.getTestMethod().orElseThrow().getName() + ".bin");
        Workloads.write(file, 0, SIZE, 42);
        Workloads.syncAndEvict(file);
        io.directmap.sys.Leases.shared();   // the process's one lease thread holds its descriptors for good: start it first
        fdsBefore = openFds();
        handlesBefore = FileHandle.openCount();
    }

    @AfterEach
    void close() throws IOException {
        try {
            if (gpu != null) gpu.close();
            if (mm != null) mm.close();
            // Other threads of the JVM (a block watcher reading sysfs, a lease or watch thread) open
            // files for a moment: a count that differs is looked at again for up to 2 s. A descriptor
            // the engine leaked stays open and still fails it.
            long now = openFds();
            for (long until = System.nanoTime() + 2_000_000_000L; now != fdsBefore && System.nanoTime() < until; now = openFds()) {
                try {
                    Thread.sleep(10);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            assertEquals(fdsBefore, now, () -> "every descriptor (rings, block devices) is closed again; open now: " + fdTargetsOrWhy());
            assertEquals(handlesBefore, FileHandle.openCount(), "every FileHandle is closed again");
        } finally {
            Files.deleteIfExists(file);
        }
    }

    private static String fdTargetsOrWhy() {
        try {
            return fdTargets();
        } catch (IOException e) {
            return e.toString();
        }
    }

    private SoftwareDevice open(Way way) {
        mm = FsStack.open(Topology.defaults(), Policy.defaults());
        gpu = way == Way.RING ? SoftwareDevice.create("gpu0", mm.topology()) : SoftwareDevice.withWorkerReads("gpu0", mm.topology());
        if (way == Way.RING) Assumptions.assumeTrue(gpu.engine().usesIoUring(), "this system has no io_uring");
        assertEquals(way == Way.RING, gpu.engine().usesIoUring());
        return gpu;
    }

    /**
     * Open descriptors, less directory listings of /proc/PID/fd (a listing left unclosed elsewhere
     * in this JVM is closed whenever the GC runs, which would make the count wander) and the
     * eventfd, signalfd and fanotify descriptors of the process's lease and change-watch threads,
     * which other test classes' watches open and close on their own threads (their own tests count
     * them): what this class checks is the rings, block devices and files the DMA engine opens.
     */
    private static long openFds() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.filter(fd -> {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    return !target.matches("/proc/\\d+/fd")
                            && !target.matches("anon_inode:\\[?(eventfd|signalfd|fanotify)\\]?");
                } catch (IOException gone) {
                    return false;   // closed meanwhile (this listing's own descriptor among them)
                }
            }).count();
        }
    }

    private static String fdTargets() throws IOException {
        StringBuilder sb = new StringBuilder();
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            for (Path p : s.toList()) {
                try {
                    sb.append(p.getFileName()).append("->").append(Files.readSymbolicLink(p)).append(' ');
                } catch (IOException gone) {
                    // the listing's own descriptor
                }
            }
        }
        return sb.toString();
    }

    /** What a user does: map the whole file into the GPU; checks the bytes and that they came directly. */
    private void readAndCheck() throws IOException {
        try (Vma vma = mm.mmap(file); DeviceAccess a = gpu.access(vma, 0, SIZE, Set.of(), MapMode.MIXED, n -> { })) {
            assertEquals(SIZE, a.directBytes(), "the file was read from the block device directly");
            Bytes.assertDeviceHoldsFile(file, 0, a.memory());
        } finally {
            Workloads.syncAndEvict(file);   // the check read it through the page cache: cold again for the next read
        }
    }

    private IOException readFails() {
        return assertThrows(IOException.class, this::readAndCheck);
    }

    /** Nothing of the engine's is still at work, and device memory is all given back. */
    private void assertEngineQuiet() {
        assertEquals(0, gpu.engine().ringsInUse(), "no ring is held by a transfer");
        assertTrue(gpu.engine().pooledRingsIdle(), "pooled rings hold no read and no unpolled completion");
        assertEquals(0, gpu.engine().tasksRunning(), "no worker task is still moving bytes");
        assertEquals(gpu.profile().memoryBytes(), gpu.memoryFree(), "all device memory was given back");
    }

    @ParameterizedTest
    @EnumSource(Way.class)
    void eioFailsNamingTheDeviceTheOffsetAndTheErrno(Way way) {
        open(way);
        assertTimeoutPreemptively(BOUND, () -> {
            try (var f = Faults.enable(FaultPoint.READ_EIO)) {
                IOException e = readFails();
                SysException sys = assertInstanceOf(SysException.class, e, "the errno is kept: " + e);
                assertEquals(Errno.EIO, sys.errno());
                assertTrue(e.getMessage().contains(EXT4.filesystem().loopDevice()), "names the device: " + e.getMessage());
                assertTrue(e.getMessage().matches(".* @\\d+\\+\\d+.*"), "names the offset and length: " + e.getMessage());
                assertTrue(e.getMessage().contains("EIO") && e.getMessage().contains("dmesg"), "names the errno, says where to look: " + e.getMessage());
                assertTrue(f.fired() > 0);
            }
            assertEngineQuiet();
            readAndCheck();
        });
    }

    @ParameterizedTest
    @EnumSource(Way.class)
    void oneEioIsReadAgainAndTheBytesAreRight(Way way) {
        oneFaultAndTheBytesAreRight(way, FaultPoint.READ_EIO);
    }

    /** The point fires once: the read gets through (read again, or continued) with the file's bytes. */
    private void oneFaultAndTheBytesAreRight(Way way, FaultPoint point) {
        open(way);
        assertTimeoutPreemptively(BOUND, () -> {
            try (var f = Faults.enable(point, 1.0, 1)) {
                readAndCheck();
                assertEquals(1, f.fired());
            }
            assertEngineQuiet();
        });
    }

    @ParameterizedTest
    @EnumSource(Way.class)
    void aReadThatStaysShortSaysTheDeviceEndedEarly(Way way) {
        open(way);
        assertTimeoutPreemptively(BOUND, () -> {
            try (var f = Faults.enable(FaultPoint.READ_SHORT)) {
                IOException e = readFails();
                assertTrue(e.getMessage().contains("the device ended early") && e.getMessage().contains(EXT4.filesystem().loopDevice())
                        && e.getMessage().contains("short read at"), e.getMessage());
                assertTrue(f.fired() > 1, "the read and its follow-up both came back short");
            }
            assertEngineQuiet();
            readAndCheck();
        });
    }

    @ParameterizedTest
    @EnumSource(Way.class)
    void aShortReadIsContinuedAndTheBytesAreRight(Way way) {
        oneFaultAndTheBytesAreRight(way, FaultPoint.READ_SHORT);
    }

    @Test
    void submitEagainIsRetriedAndTheBytesAreRight() {
        open(Way.RING);
        assertTimeoutPreemptively(BOUND, () -> {
            // One short of the bound in a row, with nothing in flight: backs off and gets through.
            try (var f = Faults.enable(FaultPoint.IO_URING_SUBMIT_EAGAIN, 1.0, IoUring.BUSY_TRIES - 1)) {
                readAndCheck();
                assertEquals(IoUring.BUSY_TRIES - 1, f.fired(), "every EAGAIN was met by a retry");
            }
            // Scattered, also while reads are in flight (it waits for one, then submits again); never
            // BUSY_TRIES in all, so it must always get through.
            try (var f = Faults.enable(FaultPoint.IO_URING_SUBMIT_EAGAIN, 0.5, IoUring.BUSY_TRIES - 1)) {
                // At least 3 reads, and on until the fault fired (a read may make a single submit, so
                // 3 reads at a half chance miss it one time in eight; 30 miss it once in a billion).
                for (int i = 0; i < 3 || (f.fired() == 0 && i < 30); i++) readAndCheck();
                assertTrue(f.fired() > 0, "EAGAIN was injected into some submit");
            }
            assertEngineQuiet();
        });
    }

    @Test
    void submitEagainForeverFailsCleanlyAfterItsBound() {
        open(Way.RING);
        assertTimeoutPreemptively(BOUND, () -> {
            try (var f = Faults.enable(FaultPoint.IO_URING_SUBMIT_EAGAIN)) {
                IOException e = readFails();
                SysException sys = assertInstanceOf(SysException.class, e, e.toString());
                assertEquals(Errno.EAGAIN, sys.errno());
                assertTrue(e.getMessage().startsWith("io_uring_enter(") && e.getMessage().contains("DMAP_IO_URING=off"), e.getMessage());
                assertTrue(f.fired() >= IoUring.BUSY_TRIES);
            }
            assertEngineQuiet();
            readAndCheck();   // the ring took back what it never submitted: no stale read, no stale completion
        });
    }

    /** Binds the whole file, reads it once (so its table entries are programmed) and returns them. */
    private List<IommuTable.Entry> entries(Vma vma, Binding b, DeviceMemory.Buffer buf) throws IOException {
        b.read(0, SIZE, buf.segment(), n -> { });
        Bytes.assertDeviceHoldsFile(file, 0, buf.segment());
        List<IommuTable.Entry> es = IommuTable.window(gpu.table().entriesOf(vma.address(), vma.address() + SIZE), vma.address(), vma.address() + SIZE);
        assertTrue(es.stream().allMatch(e -> e.target() instanceof IommuTable.Target.Peer), "all direct: " + es);
        return es;
    }

    private static void assertPatternStays(MemorySegment m) throws InterruptedException {
        m.fill((byte) 0x5A);
        Thread.sleep(200);
        for (long i = 0; i < m.byteSize(); i += 512) {
            assertEquals((byte) 0x5A, m.get(ValueLayout.JAVA_BYTE, i), "nothing wrote into memory after the transfer returned (at " + i + ")");
        }
    }

    @ParameterizedTest
    @EnumSource(Way.class)
    void aProgressCallbackThatThrowsReturnsOnlyAfterEveryRead(Way way) {
        open(way);
        assertTimeoutPreemptively(BOUND, () -> {
            try (Vma vma = mm.mmap(file); Binding b = gpu.bind(vma, 0, SIZE, SIZE, Set.of(), MapMode.MIXED);
                 DeviceMemory.Buffer buf = gpu.allocate(file.toString(), SIZE)) {
                List<IommuTable.Entry> es = entries(vma, b, buf);
                for (Throwable thrown : List.of(new IllegalStateException("progress bar broke"), new AssertionError("an Error in progress"))) {
                    // Ring: the first completion's callback throws with the other reads still in flight.
                    // Workers: the second throws while the first is still inside (another task, running).
                    int throwAt = way == Way.RING ? 1 : 2;
                    AtomicInteger calls = new AtomicInteger(), inside = new AtomicInteger();
                    LongConsumer progress = n -> {
                        inside.incrementAndGet();
                        try {
                            int c = calls.incrementAndGet();
                            if (c == throwAt) throw sneaky(thrown);
                            if (c == 1) sleep(300);
                        } finally {
                            inside.decrementAndGet();
                        }
                    };
                    Throwable e = assertThrows(Throwable.class, () -> gpu.engine().transfer(es, buf.segment(), progress));
                    assertEquals(thrown, e, "the callback's own failure comes out");
                    assertEquals(0, inside.get(), "no progress call still runs");
                    assertEquals(0, gpu.engine().ringsInUse());
                    assertTrue(gpu.engine().pooledRingsIdle(), "the ring went back drained");
                    assertEquals(0, gpu.engine().tasksRunning());
                    assertPatternStays(buf.segment());
                    b.read(0, SIZE, buf.segment(), n -> { });
                    Bytes.assertDeviceHoldsFile(file, 0, buf.segment());
                }
            }
            assertEngineQuiet();
        });
    }

    @Test
    void anInterruptStopsTheWorkersButWaitsForTheReadsStarted() {
        open(Way.WORKERS);
        assertTimeoutPreemptively(BOUND, () -> {
            try (Vma vma = mm.mmap(file); Binding b = gpu.bind(vma, 0, SIZE, SIZE, Set.of(), MapMode.MIXED);
                 DeviceMemory.Buffer buf = gpu.allocate(file.toString(), SIZE)) {
                List<IommuTable.Entry> es = entries(vma, b, buf);
                Thread caller = Thread.currentThread();
                AtomicInteger calls = new AtomicInteger(), inside = new AtomicInteger();
                LongConsumer progress = n -> {
                    inside.incrementAndGet();
                    try {
                        if (calls.incrementAndGet() == 1) {
                            caller.interrupt();
                            sleep(300);     // this task has not finished: the engine must wait for it
                        }
                    } finally {
                        inside.decrementAndGet();
                    }
                };
                InterruptedIOException e = assertThrows(InterruptedIOException.class, () -> gpu.engine().transfer(es, buf.segment(), progress));
                assertTrue(Thread.interrupted(), "the interrupt is kept for the caller");
                assertTrue(e.getMessage().contains("gpu0") && e.getMessage().contains("interrupted"), e.getMessage());
                assertEquals(0, inside.get(), "the task that was running when the interrupt came has finished");
                assertEquals(0, gpu.engine().tasksRunning());
                assertPatternStays(buf.segment());
                b.read(0, SIZE, buf.segment(), n -> { });
                Bytes.assertDeviceHoldsFile(file, 0, buf.segment());
            }
            assertEngineQuiet();
        });
    }

    @Test
    void aRingThatCannotBeDrainedIsClosedAndItsMemorySetAside() {
        open(Way.RING);
        assertTimeoutPreemptively(BOUND, () -> {
            try (Vma vma = mm.mmap(file); Binding b = gpu.bind(vma, 0, SIZE, SIZE, Set.of(), MapMode.MIXED)) {
                DeviceMemory.Buffer lost = gpu.allocate(file.toString(), SIZE);
                List<IommuTable.Entry> es = entries(vma, b, lost);
                AtomicInteger waits = new AtomicInteger();
                gpu.engine().ringWait = ring -> {
                    // The reads go to the kernel, then io_uring_enter fails for good, as with a ring gone bad.
                    if (waits.incrementAndGet() == 1) ring.submitAndWait(0);
                    throw new SysException("io_uring_enter", "test", Errno.EBADF, "");
                };
                DmaInFlightException e;
                try {
                    e = assertThrows(DmaInFlightException.class, () -> gpu.engine().transfer(es, lost.segment(), n -> { }));
                } finally {
                    gpu.engine().ringWait = ring -> ring.submitAndWait(1);
                }
                assertTrue(e.readsInFlight() > 0, "reads were in flight: " + e.getMessage());
                assertTrue(e.getMessage().contains("set aside") && e.getMessage().contains("EBADF"), e.getMessage());
                assertEquals(0, gpu.engine().ringsInUse(), "the ring was closed, not pooled");
                assertTrue(gpu.engine().pooledRingsIdle());
                assertEquals(SIZE, gpu.memorySetAside());

                assertThrows(DmaInFlightException.class, () -> gpu.engine().transfer(es, lost.segment(), n -> { }),
                        "no new DMA into memory the kernel may still write");
                lost.close();
                assertEquals(gpu.profile().memoryBytes() - SIZE, gpu.memoryFree(), "closing the buffer kept its memory");

                try (DeviceMemory.Buffer fresh = gpu.allocate(file.toString(), SIZE)) {
                    gpu.engine().transfer(es, fresh.segment(), n -> { });
                    Bytes.assertDeviceHoldsFile(file, 0, fresh.segment());
                }
            }
        });
    }

    @ParameterizedTest
    @EnumSource(Way.class)
    void deviceMemoryThatCannotBeAllocatedFailsClearlyAndLeaksNothing(Way way) {
        open(way);
        assertTimeoutPreemptively(BOUND, () -> {
            try (var f = Faults.enable(FaultPoint.DEVICE_ALLOC_FAIL, 1.0, 1)) {
                IOException e = readFails();
                SysException sys = assertInstanceOf(SysException.class, e, e.toString());
                assertEquals(12, sys.errno(), "ENOMEM, as malloc says");
                assertTrue(e.getMessage().contains("gpu0") && e.getMessage().contains("40 MiB") && e.getMessage().contains("map a smaller range"),
                        e.getMessage());
                assertEquals(1, f.fired());
            }
            assertEquals(List.of(), mm.fs().tracker().all(), "the device mapping made before the allocation was released");
            for (var dev : mm.fs().blocks().known()) assertEquals(0, dev.apertureUsed(), dev + " aperture given back");
            assertEquals(0, gpu.table().size(), "the IOMMU table is empty");
            assertEngineQuiet();
            readAndCheck();
        });
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @SuppressWarnings("unchecked")
    private static <T extends Throwable> RuntimeException sneaky(Throwable t) throws T {
        throw (T) t;
    }
}
