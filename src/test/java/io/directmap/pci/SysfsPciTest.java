package io.directmap.pci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.sys.SysfsBlock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The PCI tree read from sysfs: a copy of the test VM's, hand-made ones, and this machine's own. */
class SysfsPciTest {
    @TempDir Path dir;

    @Test
    void theVmsTreeHasItsDiskOnTheVirtioBlockFunction() throws Exception {
        PciTree t = FakeSysfs.vm(dir).read("GenuineIntel", 6);
        assertEquals(List.of(), t.problems());
        assertEquals(List.of("pci0000:00", "0000:00:00.0", "0000:00:01.0", "0000:00:02.0", "0000:00:03.0", "0000:00:04.0", "0000:00:05.0"),
                List.copyOf(t.nodes().keySet()));
        PciTree.Node disk = t.nodes().get("0000:00:02.0");
        assertEquals("pci0000:00", disk.parent());
        assertEquals(PciTree.Kind.ENDPOINT, disk.kind());
        assertEquals("1af4:1042", disk.id());
        assertEquals("mass storage", disk.description());
        assertEquals(List.of(new PciTree.Bar(0, 512 * 1024, "mem64")), disk.bars());
        assertEquals(PciTree.Kind.HOST_BRIDGE, t.nodes().get("pci0000:00").kind());
        assertEquals("8086:0d57", t.hostBridgeFunction("pci0000:00").orElseThrow().id());
        assertEquals(Optional.of("0000:00:02.0"), t.blockDevices().get("vda").function());
        assertEquals(1L << 30, t.blockDevices().get("vda").sizeBytes());
        PciTree.BlockFunction loop = t.blockDevices().get("loop1");
        assertTrue(loop.function().isEmpty());
        assertTrue(loop.why().contains("no PCI function") && loop.why().contains("loop1"), loop.why());
        assertTrue(t.cpuRoutesP2p().isEmpty(), "an Intel CPU routes nothing by itself");
    }

    /** pci_host_bridge_dev(): the first function on the root bus, and only at 00.0; a root port at 01.0 is not it. */
    @Test
    void theHostBridgesFunctionIsTheOneAt00Point0Only() throws Exception {
        FakeSysfs s = new FakeSysfs(dir.resolve("no00"));
        s.function("devices/pci0000:00/0000:00:01.0", FakeSysfs.config(0x8086, 0x2030, 0x060400, ConfigSpace.TYPE_ROOT_PORT, 0x40, 0, 0));
        s.function("devices/pci0000:00/0000:00:02.0", FakeSysfs.config(0x8086, 0x2031, 0x060400, ConfigSpace.TYPE_ROOT_PORT, 0x40, 0, 0));
        PciTree t = s.read("GenuineIntel", 6);
        assertEquals(Optional.empty(), t.hostBridgeFunction("pci0000:00"), "a whitelisted root port at 01.0 is not the host bridge's function");

        FakeSysfs rp = new FakeSysfs(dir.resolve("rp00"));
        rp.function("devices/pci0000:17/0000:17:00.0", FakeSysfs.config(0x8086, 0x2030, 0x060400, ConfigSpace.TYPE_ROOT_PORT, 0x40, 0, 0));
        rp.function("devices/pci0000:17/0000:17:01.0", FakeSysfs.config(0x8086, 0x1234, 0x060400, ConfigSpace.TYPE_ROOT_PORT, 0x40, 0, 0));
        assertEquals("0000:17:00.0", rp.read("GenuineIntel", 6).hostBridgeFunction("pci0000:17").orElseThrow().name());
    }

    @Test
    void anAmdZenCpuRoutesPeerTrafficAsTheKernelSays() throws Exception {
        FakeSysfs s = FakeSysfs.vm(dir);
        assertTrue(s.read("AuthenticAMD", 25).cpuRoutesP2p().orElseThrow().contains("family 0x19"));
        assertTrue(s.read("AuthenticAMD", 0x16).cpuRoutesP2p().isEmpty(), "before Zen");
    }

    @Test
    void bridgesBecomeRootPortsAndSwitchPortsFromTheirPortType() throws Exception {
        FakeSysfs s = new FakeSysfs(dir);
        s.function("devices/pci0000:00/0000:00:00.0", FakeSysfs.config(0x8086, 0x2020, 0x060000, -1, 0, 0, -1));
        s.function("devices/pci0000:00/0000:00:01.0", FakeSysfs.config(0x8086, 0x2030, 0x060400, ConfigSpace.TYPE_ROOT_PORT, 0x40, 0, 0));
        s.function("devices/pci0000:00/0000:00:01.0/0000:01:00.0", FakeSysfs.config(0x10b5, 0x8747, 0x060400, ConfigSpace.TYPE_UPSTREAM, 0x40, 0, 0));
        s.function("devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:08.0",
                FakeSysfs.config(0x10b5, 0x8747, 0x060400, ConfigSpace.TYPE_DOWNSTREAM, 0x40, 0, ConfigSpace.Acs.REQUEST_REDIRECT));
        s.function("devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:08.0/0000:03:00.0",
                FakeSysfs.config(0x144d, 0xa808, 0x010802, ConfigSpace.TYPE_ENDPOINT, 0x180, 0, -1));
        s.disk("nvme0n1", 1 << 20, "devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:08.0/0000:03:00.0/nvme/nvme0");
        PciTree t = s.read("GenuineIntel", 6);
        assertEquals(PciTree.Kind.ROOT_PORT, t.nodes().get("0000:00:01.0").kind());
        assertEquals(PciTree.Kind.SWITCH_UPSTREAM, t.nodes().get("0000:01:00.0").kind());
        assertEquals(PciTree.Kind.SWITCH_DOWNSTREAM, t.nodes().get("0000:02:08.0").kind());
        assertEquals("0000:02:08.0", t.nodes().get("0000:03:00.0").parent());
        assertEquals("0000:00:01.0", t.nodes().get("0000:01:00.0").parent());
        assertEquals(Optional.of("0000:03:00.0"), t.blockDevices().get("nvme0n1").function());
    }

    @Test
    void missingAndShortFilesAreReasonsNotCrashes() throws Exception {
        PciTree none = SysfsPci.read(dir.resolve("nothing"), dir.resolve("no-cpuinfo"));
        assertTrue(none.nodes().isEmpty());
        assertTrue(none.problems().getFirst().contains("bus/pci/devices"), none.problems().toString());

        FakeSysfs s = new FakeSysfs(dir.resolve("short"));
        Path f = s.function("devices/pci0000:00/0000:00:07.0", new byte[12]);
        Files.writeString(f.resolve("resource"), "garbage\n0xzz 0x1 0x2\n");
        Path g = s.function("devices/pci0000:00/0000:00:08.0", new byte[0]);
        Files.delete(g.resolve("config"));
        PciTree t = s.read("GenuineIntel", 6);
        List<String> notes = new ArrayList<>(t.nodes().get("0000:00:07.0").notes());
        assertTrue(notes.stream().anyMatch(n -> n.contains("12 bytes")), notes.toString());
        assertTrue(notes.stream().anyMatch(n -> n.contains("line 1")), notes.toString());
        assertTrue(notes.stream().anyMatch(n -> n.contains("line 2") && n.contains("hexadecimal")), notes.toString());
        assertTrue(t.nodes().get("0000:00:08.0").notes().stream().anyMatch(n -> n.contains("config unreadable")),
                t.nodes().get("0000:00:08.0").notes().toString());
    }

    /** This machine's own tree: read without a problem, every PCI disk on a function of it, as SysfsBlock finds it too. */
    @Test
    void thisMachinesTreeIsReadAndItsDiskFound() {
        if (!Files.isDirectory(Path.of("/sys/bus/pci/devices"))) {
            String why = "this machine has no /sys/bus/pci (no PCI bus, or /sys is not mounted)";
            if ("true".equals(System.getenv("CI"))) Assertions.fail("CI must read a real PCI tree, but " + why);
            Assumptions.abort("skipped: " + why);
        }
        PciTree t = SysfsPci.machine();
        assertEquals(List.of(), t.problems());
        assertFalse(t.nodes().isEmpty());
        int onPci = 0;
        for (PciTree.BlockFunction b : t.blockDevices().values()) {
            if (b.function().isEmpty()) continue;
            onPci++;
            String fn = b.function().get();
            assertTrue(t.nodes().containsKey(fn), b + " names a function the tree lacks");
            PciTree.Node n = t.nodes().get(fn);
            for (int i = 0; i < 32 && n.kind() != PciTree.Kind.HOST_BRIDGE; i++) n = t.nodes().get(n.parent());
            assertEquals(PciTree.Kind.HOST_BRIDGE, n.kind(), fn + " leads to no host bridge");
            Path number = Path.of("/sys/class/block", b.name(), "dev");
            try {
                String[] mm = Files.readString(number).trim().split(":");
                Optional<SysfsBlock.Info> info = SysfsBlock.lookup(Integer.parseInt(mm[0]), Integer.parseInt(mm[1]));
                assertEquals(Optional.of(fn), info.orElseThrow().pciSlot(), b.name() + ": sys.SysfsBlock finds another function");
            } catch (java.io.IOException e) {
                Assertions.fail(number + ": " + e);
            }
        }
        if (onPci == 0) {
            String why = "no disk of this machine sits on PCI (" + t.blockDevices().keySet() + ")";
            if ("true".equals(System.getenv("CI"))) Assertions.fail("CI runs on a VM whose disk is on PCI, but " + why);
            Assumptions.abort("skipped: " + why);
        }
        if (Files.exists(Path.of("/sys/class/block/vda/device"))) {
            assertTrue(t.blockDevices().get("vda").function().isPresent(), "vda: " + t.blockDevices().get("vda"));
        }
    }
}
