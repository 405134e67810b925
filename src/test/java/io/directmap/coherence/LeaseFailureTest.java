package io.directmap.coherence;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Binding;
import io.directmap.device.SoftwareDevice;
import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import io.directmap.fs.FsStack;
import io.directmap.fs.InvalidationReport;
import io.directmap.fs.OpenFile;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapMode;
import io.directmap.mm.Vma;
import io.directmap.sys.Leases;
import io.directmap.testing.ChildWriter;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What a failure on the way to letting go leaves behind: a lease thread that dies, an importer
 * whose invalidate throws, a munmap step that throws. Each time every device is still told, the
 * writer (a real dd) waits for them and no longer than that, and nothing stays mapped or leased.
 */
class LeaseFailureTest {
    static final long MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    Path file;
    byte[] before;

    @BeforeEach
    void write() throws IOException {
        file = EXT4.file("leased.bin");
        Workloads.write(file, 0, 4 * MiB, 7);
        before = Workloads.read(file, 0, 4096);
        Workloads.syncAndEvict(file);
    }

    @AfterEach
    void delete() throws IOException {
        Files.deleteIfExists(file);
    }

    /**
     * Called as each window lets go: the writer must still be held back (alive, and the file's
     * first page still as it was). Problems are collected, as this runs on the invalidating thread.
     */
    private Consumer<Binding.LetGo> heldBack(CompletableFuture<ChildWriter> writer, List<String> problems) {
        return letGo -> {
            try {
                if (letGo.invalidation().cause() != Invalidation.Cause.WRITE_OPEN) return;
                ChildWriter w = writer.get(5, TimeUnit.SECONDS);
                if (!w.isAlive()) problems.add("the writer finished before window " + letGo.windowStart() + " let go");
                if (!java.util.Arrays.equals(before, Workloads.read(file, 0, 4096))) {
                    problems.add("the file changed before window " + letGo.windowStart() + " let go");
                }
            } catch (Exception e) {
                problems.add(e.toString());
            }
        };
    }

    /** The stack with range events off: these failures are of the lease's way of holding writers back. */
    static FsStack leased() {
        return FsStack.open(io.directmap.pci.Topology.defaults(), io.directmap.fs.Policy.defaults().withRangeEvents(false));
    }

    @Test
    void aWriterWaitsForTheDevicesEvenWhenTheLeaseThreadDies() throws Exception {
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        int restartsBefore = Leases.shared().restarts();
        try (FsStack mm = leased(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file); Binding b = gpu.bind(vma, 0, 4 * MiB, MiB, Set.of(), MapMode.MIXED)) {
            PrecisionTest.readAll(b, gpu, 4 * MiB);
            assertEquals(4 * MiB, b.directBytes(), "read directly, under a lease");
            CompletableFuture<ChildWriter> writer = new CompletableFuture<>();
            b.onLetGo(heldBack(writer, problems));
            try (var f = Faults.enable(FaultPoint.LEASE_THREAD_DIE, 1.0, 1); ChildWriter w = ChildWriter.start(file)) {
                writer.complete(w);
                double t = w.await(60);
                assertEquals(1, f.fired(), "the lease thread died before handling the break");
                assertTrue(t < 5, "the break was answered by the replacement thread, not by lease-break-time: " + t + " s");
            }
            assertEquals(restartsBefore + 1, Leases.shared().restarts(), "the dead thread was replaced once");
            assertEquals(4, b.invalidations(), "every window let go before the writer went on");
            assertEquals(List.of(), problems);
            byte[] after = PrecisionTest.readAll(b, gpu, 4 * MiB);
            assertArrayEquals(Workloads.read(file, 0, (int) (4 * MiB)), after, "the device reads the new bytes");
            assertTrue(b.liveMappings().size() == 4 && b.liveMappings().stream().allMatch(DeviceMapping::coherent),
                    "faulted again, coherent: under a new lease");

            CompletableFuture<ChildWriter> second = new CompletableFuture<>();
            before = Workloads.read(file, 0, 4096);
            b.onLetGo(heldBack(second, problems));
            try (ChildWriter w = ChildWriter.start(file)) {
                second.complete(w);
                double t = w.await(60);
                assertTrue(t < 5, "a later break is answered too: " + t + " s");
            }
            assertEquals(8, b.invalidations());
            assertEquals(List.of(), problems);
        }
    }

    @Test
    void oneImporterThatThrowsDoesNotLetTheWriterPassTheOther() throws Exception {
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        try (FsStack mm = leased(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             SoftwareDevice nic = SoftwareDevice.create("nic0", mm.topology()); Vma vma = mm.mmap(file);
             Binding g = gpu.bind(vma, 0, 4 * MiB, MiB, Set.of(), MapMode.MIXED);
             Binding n = nic.bind(vma, 0, 4 * MiB, MiB, Set.of(), MapMode.MIXED)) {
            PrecisionTest.readAll(g, gpu, 4 * MiB);
            PrecisionTest.readAll(n, nic, 4 * MiB);
            CompletableFuture<ChildWriter> writer = new CompletableFuture<>();
            g.onLetGo(heldBack(writer, problems));
            n.onLetGo(heldBack(writer, problems));
            try (var f = Faults.enable(FaultPoint.INVALIDATE_THROWS, 1.0, 1); ChildWriter w = ChildWriter.start(file)) {
                writer.complete(w);
                double t = w.await(60);
                assertEquals(1, f.fired(), "gpu0's first window threw instead of letting go");
                assertTrue(t < 5, "the writer waited " + t + " s");
            }
            assertEquals(4, g.invalidations(), "gpu0 was told again and let go of every window");
            assertEquals(4, n.invalidations(), "nic0 was told although gpu0 threw");
            assertEquals(List.of(), problems, "and the writer waited for both");
            assertEquals(0, mm.fs().tracker().size(), "nothing is tracked any more");
        }
    }

    @Test
    void twoOwnersAreBothToldWhenTheFirstThrows() throws Exception {
        try (FsStack mm = leased(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             SoftwareDevice nic = SoftwareDevice.create("nic0", mm.topology());
             Vma va = mm.mmap(file); Vma vb = mm.mmap(file);
             Binding g = gpu.bind(va, 0, 4 * MiB, MiB, Set.of(), MapMode.MIXED);
             Binding n = nic.bind(vb, 0, 4 * MiB, MiB, Set.of(), MapMode.MIXED)) {
            PrecisionTest.readAll(g, gpu, 4 * MiB);
            PrecisionTest.readAll(n, nic, 4 * MiB);
            InvalidationReport r;
            try (var f = Faults.enable(FaultPoint.INVALIDATE_THROWS, 1.0, 1)) {
                r = mm.fs().invalidate(OpenFile.of(va), 0, 4 * MiB, Invalidation.Cause.CHANGED, "a test");
                assertEquals(1, f.fired());
            }
            assertEquals(2, r.owners(), "two vmas own mappings of the inode");
            assertEquals(8, r.mappings());
            assertEquals(4, g.invalidations(), "the owner that threw was told again and let go");
            assertEquals(4, n.invalidations(), "the other owner was told");
            assertEquals(0, mm.fs().tracker().size());
        }
    }

    @Test
    void anImporterThatNeverLetsGoIsRevokedAndTheLeaseStillReleased() throws Exception {
        try (FsStack mm = leased(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file); Binding b = gpu.bind(vma, 0, 4 * MiB, MiB, Set.of(), MapMode.MIXED)) {
            PrecisionTest.readAll(b, gpu, 4 * MiB);
            List<DeviceMapping> mapped = b.liveMappings();
            assertEquals(1, ChildWriter.leasesOn(file).size(), "one lease while mapped");
            IllegalStateException e;
            try (var f = Faults.enable(FaultPoint.INVALIDATE_THROWS)) {
                e = assertThrows(IllegalStateException.class,
                        () -> mm.fs().invalidate(OpenFile.of(vma), 0, 4 * MiB, Invalidation.Cause.CHANGED, "a test"));
                assertTrue(f.fired() >= 4, "told again, then given up on: " + f.fired());
            }
            assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("revoked"), e.getMessage());
            assertTrue(e.getSuppressed().length > 0 && e.getSuppressed()[0].getMessage().contains("invalidate_throws"),
                    "what the importer threw is attached");
            assertTrue(mapped.stream().noneMatch(DeviceMapping::isLive), "its mappings are retired: no read through them is delivered");
            assertEquals(0, mm.fs().tracker().size());
            assertEquals(List.of(), ChildWriter.leasesOn(file), "the lease was given back");
        }
    }

    @Test
    void munmapRunsEveryStepWhateverOneThrows() throws Exception {
        try (FsStack mm = leased(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             SoftwareDevice nic = SoftwareDevice.create("nic0", mm.topology())) {
            Vma vma = mm.mmap(file);
            Binding g = gpu.bind(vma, 0, 4 * MiB, MiB, Set.of(), MapMode.MIXED);
            Binding n = nic.bind(vma, 0, 4 * MiB, MiB, Set.of(), MapMode.MIXED);
            try {
                PrecisionTest.readAll(g, gpu, 4 * MiB);
                PrecisionTest.readAll(n, nic, 4 * MiB);
                List<DeviceMapping> mapped = new ArrayList<>(g.liveMappings());
                mapped.addAll(n.liveMappings());
                assertEquals(8, mapped.size());
                RuntimeException e;
                try (var f = Faults.enable(FaultPoint.MUNMAP_ERROR, 1.0, 2)) {
                    e = assertThrows(RuntimeException.class, vma::close);
                    assertEquals(2, f.fired());
                }
                assertTrue(e.getMessage().contains("munmap_error"), e.getMessage());
                assertEquals(1, e.getSuppressed().length, "the second failure is attached to the first");
                assertEquals(6, g.invalidations() + n.invalidations(), "every notifier the fault did not hit let go");
                assertTrue(vma.isClosed());
                assertTrue(mapped.stream().noneMatch(DeviceMapping::isLive), "every device mapping was released");
                assertEquals(0, mm.fs().tracker().size(), "and is no longer tracked");
                assertEquals(List.of(), ChildWriter.leasesOn(file), "no lease is held");
                try (ChildWriter w = ChildWriter.start(file)) {
                    double t = w.await(60);
                    assertTrue(t < 5, "a writer opens at once: " + t + " s");
                }
            } finally {
                g.close();
                n.close();
                vma.close();
            }
        }
    }

    @Test
    void skipInvalidateNeitherTellsTheOwnersNorTakesAnythingBack() throws Exception {
        try (FsStack mm = leased(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file); Binding b = gpu.bind(vma, 0, 4 * MiB, MiB, Set.of(), MapMode.MIXED)) {
            PrecisionTest.readAll(b, gpu, 4 * MiB);
            List<DeviceMapping> mapped = b.liveMappings();
            try (var f = Faults.enable(FaultPoint.SKIP_INVALIDATE, 1.0, 1)) {
                InvalidationReport r = mm.fs().invalidate(OpenFile.of(vma), 0, 4 * MiB, Invalidation.Cause.CHANGED, "a test");
                assertEquals(1, f.fired());
                assertEquals(0, r.mappings(), "nothing was taken back");
            }
            assertEquals(0, b.invalidations(), "the device was not told");
            assertTrue(mapped.stream().allMatch(DeviceMapping::isLive), "its mappings stay live, as if nothing changed");
            assertEquals(4, mm.fs().tracker().size());
        }
    }
}
