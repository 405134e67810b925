package io.directmap.coherence;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.Policy;
import io.directmap.pci.Topology;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.torture.Leaks;
import io.directmap.tools.torture.Torture;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Two software devices read a mapped file 10,000 times between them while other processes write,
 * punch, zero, truncate and extend, relocate it and evict its pages. Not one block may be stale
 * or torn, and every kind of change must have happened and been survived. By default the changes
 * are heard with their range (fanotify); a subclass may run it with range events switched off
 * (read leases, whole-file invalidation).
 */
abstract class TortureTest {
    static final int READS_PER_DEVICE = 5_000;

    abstract ScratchFs scratch();

    /** Whether the run holds changes back by range events (true) or by a read lease alone (false). */
    boolean rangeEvents() { return true; }

    /** Whether some relocating run must have moved blocks (where the file system's tool does here). */
    boolean relocationsMove() { return false; }

    @Test
    void noDeviceEverReadsAStaleOrTornBlock() throws IOException, InterruptedException {
        Path file = scratch().file("torture.bin");
        Leaks before = Leaks.of(scratch().mountPoint());
        Torture.Summary s;
        try (FsStack mm = FsStack.open(Topology.defaults(), Policy.defaults().withRangeEvents(rangeEvents()));
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             SoftwareDevice nic = SoftwareDevice.create("nic0", mm.topology())) {
            s = new Torture(file, 4096, scratch().type().name().toLowerCase()).run(mm, List.of(gpu, nic), READS_PER_DEVICE, 42,
                    System.out::println);
            assertEquals(List.of(), mm.fs().tracker().all(), "every mapping is released at the end");
        } finally {
            Files.deleteIfExists(file);
        }
        assertEquals(List.of(), Leaks.of(scratch().mountPoint()).since(before), "nothing left open, attached or running");
        String report = s.render();
        System.out.println(report);
        if (rangeEvents()) {
            if (!s.heldBackBy().startsWith("range events")) {
                if ("true".equals(System.getenv("CI"))) Assertions.fail("CI must run the torture with range events: " + report);
                Assumptions.abort("skipped: no range events here: " + s.heldBackBy());
            }
        } else {
            assertTrue(s.heldBackBy().startsWith("a read lease"), "switched off, a lease holds changes back: " + report);
        }
        Files.writeString(Path.of("target", "torture-" + s.fsType() + ".txt"), report + "problems: " + s.problems() + "\n");
        assertEquals(List.of(), s.problems(), report);
        assertEquals(0, s.stale(), report);
        assertEquals(0, s.torn(), report);
        assertTrue(s.reads() >= 2 * READS_PER_DEVICE, report);
        for (Torture.Op op : Torture.Op.values()) assertTrue(s.ops().getOrDefault(op, 0) > 0, op + " never ran: " + report);
        assertTrue(s.directBytes() > 0, "some reads went direct: " + report);
        assertTrue(s.fallbackBytes() > 0, "some reads went through the page cache: " + report);
        assertTrue(s.invalidations() > 0 && s.refaults() > 0, "changes took mappings back and devices faulted again: " + report);
        assertEquals(0, s.incoherentReads(), "no read was delivered while a writer held the file: " + report);
        assertEquals(s.reads(), s.readBytes().count(), "every read's width is counted: " + report);
        assertTrue(s.readBytes().p50() >= Torture.BLOCK && s.readBytes().p99() <= 32 * Torture.BLOCK, report);
        assertTrue(s.readNanos().p50() > 0 && s.readNanos().p50() <= s.readNanos().p99(), report);
        var r = s.relocations();
        assertEquals((int) s.ops().get(Torture.Op.RELOCATE), r.runs(), "every relocating run is counted once: " + report);
        assertEquals(r.runs(), r.moved() + r.unchanged() + r.failed(), report);
        assertEquals(r.moved() > 0, r.movedBytes() > 0, report);
        if (relocationsMove()) assertTrue(r.moved() > 0, "blocks moved under the devices, and the reads stayed right: " + report);
    }
}
