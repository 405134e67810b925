package io.directmap.pci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.block.BlockReason;
import io.directmap.device.DeviceAccess;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.Policy;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.testing.Bytes;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** What the tree decides reaches the block device's refusals, with the tree's reason in the detail. */
class PlacedDeviceRefusalTest {
    static final long MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    static Path file;
    static String loop;

    @BeforeAll
    static void writeColdFile() throws Exception {
        file = EXT4.file("placed.bin");
        Workloads.write(file, 0, 2 * MiB, 33);
        loop = Path.of(EXT4.filesystem().loopDevice()).getFileName().toString();
    }

    static List<Segment> map(String topology, Set<MapFlag> flags) throws Exception {
        Workloads.syncAndEvict(file);
        try (FsStack mm = FsStack.open(Topology.parse(topology, "placed.topology", PciTree.EMPTY), Policy.defaults());
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file);
             DeviceAccess a = gpu.access(vma, 0, 2 * MiB, flags, MapMode.MIXED, d -> { })) {
            Bytes.assertDeviceHoldsFile(file, 0, a.memory());
            return a.segments();
        }
    }

    static List<Segment.Fallback> refused(List<Segment> s, BlockReason reason) {
        return s.stream().filter(x -> x instanceof Segment.Fallback f && f.refusal().reason() == reason)
                .map(x -> (Segment.Fallback) x).toList();
    }

    @Test
    void aHostBridgeThatDoesNotRouteRefusesWithItsName() throws Exception {
        List<Segment> s = map("host-bridge hb0\nhost-bridge hb1\nplace gpu0 under hb0\nplace " + loop + " under hb1\n", Set.of());
        List<Segment.Fallback> f = refused(s, BlockReason.NO_P2P_PATH);
        assertEquals(2 * MiB, f.stream().mapToLong(Segment::length).sum(), s.toString());
        String detail = f.getFirst().refusal().detail();
        assertTrue(detail.contains("gpu0") && detail.contains("host bridge hb0") && detail.contains("placed.topology"), detail);
    }

    @Test
    void underOneSwitchTheMappingIsDirectButAtomicsNeedACompleter() throws Exception {
        String tree = "host-bridge hb0\nswitch sw0 under hb0\nplace gpu0 under sw0\nplace " + loop + " under sw0\n";
        List<Segment> plain = map(tree, Set.of());
        assertEquals(2 * MiB, plain.stream().filter(x -> x instanceof Segment.Direct).mapToLong(Segment::length).sum(), plain.toString());
        List<Segment> atomic = map(tree, Set.of(MapFlag.SUPPORT_ATOMIC_OP));
        List<Segment.Fallback> f = refused(atomic, BlockReason.NO_ATOMICS_ON_PATH);
        assertEquals(2 * MiB, f.stream().mapToLong(Segment::length).sum(), atomic.toString());
        assertTrue(f.getFirst().refusal().detail().contains(loop + " is a block device"), f.getFirst().refusal().detail());
        List<Segment> granted = map(tree + "completer " + loop + " atomics64\n", Set.of(MapFlag.SUPPORT_ATOMIC_OP));
        assertEquals(2 * MiB, granted.stream().filter(x -> x instanceof Segment.Direct).mapToLong(Segment::length).sum(), granted.toString());
    }
}
