package io.directmap.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.DeviceAccess;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.Policy;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.Reason;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.testing.Bytes;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** The block device's own vetoes, after the file system agreed: aperture, peer-to-peer path, atomics. */
class BlockPolicyTest {
    static final long MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @TempDir static Path dir;
    static Path file;
    static String loop;

    @BeforeAll
    static void writeColdFile() throws Exception {
        file = EXT4.file("cold.bin");
        Workloads.write(file, 0, 4 * MiB, 70);
        Workloads.syncAndEvict(file);
        loop = Path.of(EXT4.filesystem().loopDevice()).getFileName().toString();
    }

    static List<Segment> map(String topology, Set<MapFlag> flags) throws Exception {
        Workloads.syncAndEvict(file);   // the previous test's byte check read it into the page cache
        Path t = Files.writeString(dir.resolve("topology-" + Math.abs(topology.hashCode())), topology);
        try (FsStack mm = FsStack.open(Topology.load(t), Policy.defaults());
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
             Vma vma = mm.mmap(file);
             DeviceAccess a = gpu.access(vma, 0, 4 * MiB, flags, MapMode.MIXED, d -> { })) {
            Bytes.assertDeviceHoldsFile(file, 0, a.memory());
            return a.segments();
        }
    }

    static long bytes(List<Segment> segments, Reason reason) {
        return segments.stream().filter(s -> reason == null ? s instanceof Segment.Direct
                : s instanceof Segment.Fallback f && f.refusal().reason() == reason).mapToLong(Segment::length).sum();
    }

    @Test
    void defaultTopologyGoesDirect() throws Exception {
        assertEquals(4 * MiB, bytes(map("", Set.of()), null));
    }

    @Test
    void exhaustedApertureRefusesTheRest() throws Exception {
        List<Segment> s = map("bar " + loop + " 1M\n", Set.of());
        assertEquals(MiB, bytes(s, null), s.toString());
        assertEquals(3 * MiB, bytes(s, BlockReason.APERTURE_EXHAUSTED), s.toString());
    }

    @Test
    void noPeerToPeerPathRefusesAll() throws Exception {
        List<Segment> s = map("no-p2p gpu0 *\n", Set.of());
        assertEquals(4 * MiB, bytes(s, BlockReason.NO_P2P_PATH), s.toString());
        var f = (Segment.Fallback) s.getFirst();
        assertTrue(f.refusal().detail().contains("gpu0"), f.refusal().detail());
    }

    @Test
    void atomicsNeedAPathThatCarriesThem() throws Exception {
        List<Segment> refused = map("", Set.of(MapFlag.SUPPORT_ATOMIC_OP));
        assertEquals(4 * MiB, bytes(refused, BlockReason.NO_ATOMICS_ON_PATH), refused.toString());
        List<Segment> granted = map("atomics gpu0 " + loop + "\n", Set.of(MapFlag.SUPPORT_ATOMIC_OP));
        assertEquals(4 * MiB, bytes(granted, null), granted.toString());
    }

    @Test
    void badTopologyFileNamesTheLine() throws Exception {
        Path t = Files.writeString(dir.resolve("bad-topology"), "# ok\nbar loop0 lots\n");
        String m = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class, () -> Topology.load(t)).getMessage();
        assertTrue(m.contains("bad-topology:2") && m.contains("not a size"), m);
    }
}
