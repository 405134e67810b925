package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.SoftwareDevice;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapRequest;
import io.directmap.mm.Vma;
import io.directmap.sys.Leases;
import io.directmap.testing.ChildWriter;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The last check before a coherent mapping's bytes are delivered: is the read lease still held?
 * The break's handler is kept from running (it waits for the file's lock, which the test holds),
 * so only F_GETLEASE can see that a writer is waiting.
 */
class LeaseCheckTest {
    static final long MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @Test
    void aBrokenLeaseIsSeenBeforeTheBreakReachesTheDevice() throws Exception {
        Path file = EXT4.file("checked.bin");
        Workloads.write(file, 0, 4 * MiB, 5);
        Workloads.syncAndEvict(file);
        List<Invalidation> told = Collections.synchronizedList(new ArrayList<>());
        // Leases only: with range events an open for writing takes nothing back (RangeInvalidationTest).
        try (FsStack mm = FsStack.open(io.directmap.pci.Topology.defaults(), Policy.defaults().withRangeEvents(false));
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file)) {
            OpenFile of = OpenFile.of(vma);
            FileMapping m = mm.fs().deviceMap(of, new MapRequest(gpu.endpoint(), 0, 4 * MiB),
                    told::add);
            assertTrue(m.coherent() && m.directBytes() == 4 * MiB, "mapped directly under a lease: " + m.segments());
            assertTrue(mm.fs().verify(m, 0, 4 * MiB), "the check passes while the lease is held");
            ChildWriter w;
            synchronized (of.coherence) {
                w = ChildWriter.start(file);
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (Leases.shared().held(of.handle()) && System.nanoTime() < deadline) Thread.sleep(2);
                assertFalse(Leases.shared().held(of.handle()), "F_GETLEASE reports the break");
                assertTrue(w.isAlive(), "the writer waits");
                assertTrue(told.isEmpty(), "the break's handler has not run");

                assertFalse(mm.fs().verify(m, 0, 4 * MiB), "what was read is not delivered as coherent");
                assertFalse(m.isLive(), "the mapping was taken back");
                assertEquals(1, told.size());
                assertEquals(Invalidation.Cause.WRITE_OPEN, told.getFirst().cause());
            }
            try (w) {
                double t = w.await(60);
                assertTrue(t < 5, "the writer went on once the mapping was taken back: " + t + " s");
            }
            assertEquals(0, mm.fs().tracker().size());
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
