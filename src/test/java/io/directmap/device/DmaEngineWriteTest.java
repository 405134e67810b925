package io.directmap.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import io.directmap.fs.FsStack;
import io.directmap.lang.Xorshift;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.sys.FileHandle;
import io.directmap.sys.PageCacheAdvice;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The DMA engine's write direction on both of its paths: through io_uring, and on the worker
 * threads (one blocking O_DIRECT pwrite each, as with DMAP_IO_URING=off). Each writes every byte
 * where it belongs; a write_eio in the middle leaves each block old or new and names the range.
 */
class DmaEngineWriteTest {
    static final long MiB = 1 << 20, SIZE = 32 * MiB;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    FsStack mm;
    Path file;

    @BeforeEach
    void open() throws IOException {
        mm = FsStack.open(Topology.defaults(), io.directmap.fs.Policy.defaults());
        file = EXT4.file("engine-write.bin");
        Workloads.write(file, 0, SIZE, 61);
        Workloads.syncAndEvict(file);
    }

    @AfterEach
    void close() throws IOException {
        mm.close();
        Files.deleteIfExists(file);
    }

    private static byte[] uncached(Path file) throws IOException {
        try (FileHandle h = FileHandle.openRead(file)) {
            h.fsync();
            PageCacheAdvice.dropCache(h, 0, 0);
        }
        return Workloads.read(file, 0, (int) SIZE);
    }

    private void writesEveryByte(SoftwareDevice dev) throws IOException {
        byte[] want;
        try (DeviceMemory.Buffer src = dev.allocate("source", SIZE)) {
            Xorshift.seeded(62).fill(src.segment());
            want = src.segment().asSlice(0, SIZE).toArray(ValueLayout.JAVA_BYTE);
            try (Vma vma = mm.mmapForWrite(file);
                 Binding b = dev.bind(vma, 0, SIZE, 8 * MiB, Set.of(MapFlag.WRITE), MapMode.MIXED)) {
                Binding.Write w = b.write(0, src.segment().asSlice(0, SIZE), true, n -> { });
                assertEquals(SIZE, w.directBytes(), w.segments().toString());
            }
        }
        assertArrayEquals(want, uncached(file));
    }

    @Test
    void theRingWritesEveryByteWhereItBelongs() throws IOException {
        try (SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology())) {
            org.junit.jupiter.api.Assumptions.assumeTrue(gpu.engine().usesIoUring(), "this system has no io_uring");
            writesEveryByte(gpu);
        }
    }

    @Test
    void theWorkerThreadsWriteEveryByteWhereItBelongs() throws IOException {
        try (SoftwareDevice gpu = SoftwareDevice.withWorkerReads("gpu0", mm.topology())) {
            writesEveryByte(gpu);
        }
    }

    @Test
    void aWorkerWriteThatFailsLeavesEachBlockOldOrNewAndNamesTheRange() throws IOException {
        byte[] old = Workloads.read(file, 0, (int) SIZE);
        Workloads.syncAndEvict(file);
        try (SoftwareDevice gpu = SoftwareDevice.withWorkerReads("gpu0", mm.topology());
             DeviceMemory.Buffer src = gpu.allocate("source", SIZE)) {
            Xorshift.seeded(63).fill(src.segment());
            byte[] want = src.segment().asSlice(0, SIZE).toArray(ValueLayout.JAVA_BYTE);
            IOException e;
            try (Vma vma = mm.mmapForWrite(file);
                 Binding b = gpu.bind(vma, 0, SIZE, SIZE, Set.of(MapFlag.WRITE), MapMode.MIXED);
                 var fault = Faults.enable(FaultPoint.WRITE_EIO, 1.0, 1)) {
                e = assertThrows(IOException.class, () -> b.write(0, src.segment().asSlice(0, SIZE), true, n -> { }));
                assertEquals(1, fault.fired());
            }
            assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("failed") && e.getMessage().contains("EIO"),
                    e.getMessage());
            byte[] now = uncached(file);
            int oldBlocks = 0;
            for (int at = 0; at < SIZE; at += 4096) {
                byte[] got = Arrays.copyOfRange(now, at, at + 4096);
                if (Arrays.equals(got, Arrays.copyOfRange(old, at, at + 4096))) oldBlocks++;
                else if (!Arrays.equals(got, Arrays.copyOfRange(want, at, at + 4096))) {
                    throw new AssertionError("block at " + at + " holds neither its old nor its new bytes");
                }
            }
            assertTrue(oldBlocks > 0, "the request that failed wrote nothing");
        }
    }

    /**
     * Another open of the file while a long write runs waits for the stretch pinned at its break,
     * not for the whole write: the kernel lets such an opener go after lease-break-time whether the
     * device let go or not, and a write still pinned then could go on into blocks the file no longer
     * owns. The write goes on through the file system while the file is open elsewhere, and every
     * byte lands.
     */
    @Test
    void anOpenDuringALongWriteWaitsForOneStretchNotTheWholeWrite() throws Exception {
        long saved = Binding.pinBytes;
        Binding.pinBytes = 4 * MiB;
        java.util.concurrent.CountDownLatch opened = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicBoolean started = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicBoolean late = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicReference<Throwable> problem = new java.util.concurrent.atomic.AtomicReference<>();
        Thread[] opener = new Thread[1];
        byte[] want;
        try (SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             DeviceMemory.Buffer src = gpu.allocate("source", SIZE)) {
            Xorshift.seeded(64).fill(src.segment());
            want = src.segment().asSlice(0, SIZE).toArray(ValueLayout.JAVA_BYTE);
            try (Vma vma = mm.mmapForWrite(file);
                 Binding b = gpu.bind(vma, 0, SIZE, 4 * MiB, Set.of(MapFlag.WRITE), MapMode.MIXED)) {
                b.write(0, src.segment().asSlice(0, SIZE), false, done -> {
                    try {
                        if (started.compareAndSet(false, true)) {
                            // The first stretch is pinned: another open of the file waits in the kernel for the lease break.
                            opener[0] = Thread.ofPlatform().start(() -> {
                                try {
                                    java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.READ).close();
                                    opened.countDown();
                                } catch (IOException x) {
                                    problem.set(x);
                                    opened.countDown();
                                }
                            });
                            long deadline = System.nanoTime() + 10_000_000_000L;
                            while (io.directmap.testing.ChildWriter.leasesOn(file).stream().noneMatch(l -> l.contains("BREAKING"))) {
                                if (System.nanoTime() > deadline) throw new AssertionError("the open did not break the write lease");
                                Thread.sleep(1);
                            }
                        } else if (done > 2 * Binding.pinBytes && opened.getCount() > 0) {
                            // Two stretches later: the open must have gone on by now.
                            if (!opened.await(20, java.util.concurrent.TimeUnit.SECONDS)) late.set(true);
                        }
                    } catch (IOException | InterruptedException x) {
                        problem.compareAndSet(null, x);
                    }
                });
            }
        } finally {
            Binding.pinBytes = saved;
            if (opener[0] != null) opener[0].join(60_000);
        }
        if (problem.get() != null) throw new AssertionError(problem.get());
        assertTrue(started.get(), "the write reported progress");
        assertTrue(!late.get(), "the open went on while the write still ran (it waited for one stretch, not all of it)");
        assertEquals(0, opened.getCount(), "the open went on");
        assertArrayEquals(want, uncached(file), "every byte landed, direct or through the file system");
    }
}
