package io.directmap.pci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Peer-to-peer and atomics answered from trees a topology file builds, by the rules of pci_p2pdma_distance. */
class TopologyTreeTest {
    @TempDir Path dir;

    static Topology tree(String text) throws IOException {
        return Topology.parse(text, "t", PciTree.EMPTY);
    }

    static Topology.Endpoint sw(Topology t, String name) {
        return t.endpoint(name, Topology.Kind.IMPORTER, Optional.empty(), 1L << 30);
    }

    @Test
    void twoDevicesUnderOneSwitchTalkDirectly() throws Exception {
        Topology t = tree("host-bridge hb0\nswitch sw0 under hb0\nplace gpu0 under sw0\nplace nic0 under sw0\n");
        Reach r = t.peerPath(sw(t, "gpu0"), sw(t, "nic0"));
        assertInstanceOf(Reach.Direct.class, r, r.toString());
        assertEquals(4, r.distance());
        assertEquals("gpu0 > sw0/0 > sw0 > sw0/1 > nic0", r.route());
        assertTrue(r.why().contains("sw0"), r.why());
        assertTrue(t.peerToPeer(sw(t, "gpu0"), sw(t, "nic0")));
    }

    @Test
    void acrossAHostBridgeNotKnownToRouteIsRefusedNamingIt() throws Exception {
        Topology t = tree("host-bridge hb0\nswitch sw0 under hb0\nswitch sw1 under hb0\nplace gpu0 under sw0\nplace nic0 under sw1\n");
        Reach r = t.peerPath(sw(t, "gpu0"), sw(t, "nic0"));
        assertInstanceOf(Reach.Refused.class, r, r.toString());
        assertEquals(6, r.distance());
        assertEquals("gpu0 > sw0/0 > sw0 > hb0 > sw1 > sw1/0 > nic0", r.route());
        assertTrue(r.why().contains("host bridge hb0") && r.why().contains("host-bridge hb0 routes-p2p"), r.why());
        assertFalse(t.peerToPeer(sw(t, "gpu0"), sw(t, "nic0")));
        assertFalse(t.atomics(sw(t, "gpu0"), sw(t, "nic0")));
    }

    @Test
    void acrossAHostBridgeThatRoutesPeerTrafficGoesThroughIt() throws Exception {
        Topology t = tree("host-bridge hb0 routes-p2p\nswitch sw0 under hb0\nswitch sw1 under hb0\nplace gpu0 under sw0\nplace nic0 under sw1\n");
        Reach r = t.peerPath(sw(t, "gpu0"), sw(t, "nic0"));
        Reach.ThroughHostBridge h = assertInstanceOf(Reach.ThroughHostBridge.class, r, r.toString());
        assertEquals("hb0", h.hostBridge());
        assertEquals(6, r.distance());
        assertTrue(r.why().contains("t:1"), "the rule that said so: " + r.why());
    }

    @Test
    void twoHostBridgesMustBothRoute() throws Exception {
        String text = "host-bridge hb0 routes-p2p\nhost-bridge hb1\nplace gpu0 under hb0\nplace nic0 under hb1\n";
        Reach r = tree(text).peerPath(sw(tree(text), "gpu0"), sw(tree(text), "nic0"));
        assertInstanceOf(Reach.Refused.class, r, r.toString());
        assertTrue(r.why().contains("hb1") && !r.why().contains("host bridge hb0 is"), r.why());
        Topology both = tree(text.replace("host-bridge hb1\n", "host-bridge hb1 routes-p2p\n"));
        Reach ok = both.peerPath(sw(both, "gpu0"), sw(both, "nic0"));
        assertInstanceOf(Reach.ThroughHostBridge.class, ok, ok.toString());
        assertEquals(2, ok.distance());
        assertEquals("gpu0 > hb0 > hb1 > nic0", ok.route());
    }

    @Test
    void acsRedirectOnTheSwitchPortsIsRefused() throws Exception {
        String text = "host-bridge hb0\nswitch sw0 under hb0\nplace gpu0 under sw0\nplace nic0 under sw0\nacs sw0 redirect\n";
        Topology t = tree(text);
        Reach r = t.peerPath(sw(t, "gpu0"), sw(t, "nic0"));
        assertInstanceOf(Reach.Refused.class, r, r.toString());
        assertTrue(r.why().contains("ACS P2P Request Redirect") && r.why().contains("sw0/") && r.why().contains("t:5"), r.why());
        assertTrue(r.why().contains("hb0"), "where the traffic would have to go: " + r.why());
        assertEquals(4, r.distance());
        // The kernel sends redirected traffic up to the root complex: a host bridge that routes it carries it.
        Topology routed = tree(text.replace("host-bridge hb0\n", "host-bridge hb0 routes-p2p\n"));
        assertInstanceOf(Reach.ThroughHostBridge.class, routed.peerPath(sw(routed, "gpu0"), sw(routed, "nic0")));
        // 'acs ... direct' on a port clears what its switch says.
        Topology cleared = tree(text + "acs sw0/0 direct\nacs sw0/1 direct\n");
        assertInstanceOf(Reach.Direct.class, cleared.peerPath(sw(cleared, "gpu0"), sw(cleared, "nic0")));
    }

    @Test
    void acsBelowWherePathsPartRedirectsToo() throws Exception {
        // gpu0 sits under sw1, itself under sw0; nic0 under sw0. The kernel (calc_map_type_and_dist)
        // asks every device on both paths: sw1's redirect sends gpu0's requests up to the root complex.
        String text = "host-bridge hb0\nswitch sw0 under hb0\nswitch sw1 under sw0\nplace gpu0 under sw1\nplace nic0 under sw0\nacs sw1 redirect\n";
        Topology t = tree(text);
        Reach r = t.peerPath(sw(t, "gpu0"), sw(t, "nic0"));
        assertInstanceOf(Reach.Refused.class, r, r.toString());
        assertEquals(6, r.distance());
        assertTrue(r.why().contains("set on sw1/0") && r.why().contains("host bridge hb0"), r.why());
        Topology routed = tree(text.replace("host-bridge hb0\n", "host-bridge hb0 routes-p2p\n"));
        assertInstanceOf(Reach.ThroughHostBridge.class, routed.peerPath(sw(routed, "gpu0"), sw(routed, "nic0")));
        Topology none = tree(text.replace("acs sw1 redirect\n", ""));
        Reach ok = none.peerPath(sw(none, "gpu0"), sw(none, "nic0"));
        assertInstanceOf(Reach.Direct.class, ok, ok.toString());
        assertEquals("gpu0 > sw1/0 > sw1 > sw0/0 > sw0 > sw0/1 > nic0", ok.route());
    }

    @Test
    void atomicsMissingOnOneLinkRefuseAtomicsOnly() throws Exception {
        Topology t = tree("host-bridge hb0\nswitch sw0 under hb0\nswitch sw1 under sw0\nplace gpu0 under sw1\nplace nic0 under sw0\nno-atomic-routing sw1\n");
        Topology.Endpoint gpu = sw(t, "gpu0"), nic = sw(t, "nic0");
        assertTrue(t.peerToPeer(gpu, nic));
        Reach a = t.atomicPath(gpu, nic);
        assertInstanceOf(Reach.Refused.class, a, a.toString());
        assertTrue(a.why().contains("sw1/0 does not route AtomicOps") && a.why().contains("t:6"), a.why());
        Topology all = tree("host-bridge hb0\nswitch sw0 under hb0\nswitch sw1 under sw0\nplace gpu0 under sw1\nplace nic0 under sw0\n");
        Reach ok = all.atomicPath(sw(all, "gpu0"), sw(all, "nic0"));
        assertInstanceOf(Reach.Direct.class, ok, ok.toString());
        assertTrue(ok.why().contains("completes 64-bit"), ok.why());
    }

    @Test
    void aCompleterWithout64BitAtomicsRefusesThem() throws Exception {
        Topology t = tree("host-bridge hb0\nswitch sw0 under hb0\nplace gpu0 under sw0\nplace nic0 under sw0\ncompleter nic0 atomics32 cas128\n");
        Topology.Endpoint gpu = sw(t, "gpu0"), nic = sw(t, "nic0");
        assertTrue(t.peerToPeer(gpu, nic));
        Reach a = t.atomicPath(gpu, nic);
        assertInstanceOf(Reach.Refused.class, a, a.toString());
        assertTrue(a.why().contains("nic0 does not complete 64-bit AtomicOps") && a.why().contains("t:5"), a.why());
        // The other way round nic0 asks and gpu0 completes: a software device completes 64-bit ones by default.
        assertTrue(t.atomics(nic, gpu));
    }

    @Test
    void aPlacedBlockDeviceCompletesNoAtomicsUnlessARuleSaysSo() throws Exception {
        String text = "host-bridge hb0\nswitch sw0 under hb0\nplace gpu0 under sw0\nplace loop0 under sw0\n";
        Topology t = tree(text);
        Topology.Endpoint loop = t.endpoint("loop0", Topology.Kind.BLOCK_DEVICE, Optional.empty(), 1L << 30);
        Reach a = t.atomicPath(sw(t, "gpu0"), loop);
        assertTrue(a.why().contains("loop0 is a block device"), a.why());
        Topology yes = tree(text + "completer loop0 atomics64\n");
        assertTrue(yes.atomics(sw(yes, "gpu0"), yes.endpoint("loop0", Topology.Kind.BLOCK_DEVICE, Optional.empty(), 1L << 30)));
    }

    @Test
    void aTopologyThatPlacesNothingAnswersAsBefore() throws Exception {
        Topology t = tree("bar loop0 64M\n");
        Topology.Endpoint gpu = sw(t, "gpu0"), loop = t.endpoint("loop0", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:00:02.0"), 1);
        Reach r = t.peerPath(gpu, loop);
        assertInstanceOf(Reach.Direct.class, r);
        assertEquals(Topology.ONE_SWITCH, r.distance());
        assertTrue(r.why().contains("gpu0 is not placed"), r.why());
        Reach a = t.atomicPath(gpu, loop);
        assertFalse(a.allowed());
        assertTrue(a.why().contains("no 'atomics gpu0 loop0' rule"), a.why());
        assertEquals(64L << 20, loop.apertureBytes());
    }

    @Test
    void theOldRulesStillDecide() throws Exception {
        Topology t = tree("host-bridge hb0 routes-p2p\nplace gpu0 under hb0\nplace nic0 under hb0\nno-p2p gpu0 *\natomics nic0 gpu1\n");
        Reach no = t.peerPath(sw(t, "gpu0"), sw(t, "nic0"));
        assertInstanceOf(Reach.Refused.class, no);
        assertTrue(no.why().contains("t:4") && no.why().contains("no-p2p gpu0 *"), no.why());
        Reach yes = t.atomicPath(sw(t, "gpu1"), sw(t, "nic0"));
        assertTrue(yes.allowed() && yes.why().contains("t:5"), yes.toString());
    }

    @Test
    void badRulesNameTheLineAndTheForm() {
        String[][] cases = {
                {"place gpu0 under sw9\n", "t:1", "declare it first"},
                {"host-bridge hb0\nswitch sw0 over hb0\n", "t:2", "switch NAME under PARENT"},
                {"host-bridge hb0\nplace gpu0 under hb0\nplace nic0 under gpu0\n", "t:3", "not a bridge"},
                {"host-bridge hb0\nplace gpu0 under hb0\ncompleter gpu0 atomics99\n", "t:3", "atomics32 atomics64 cas128"},
                {"host-bridge hb0\nplace gpu0 under hb0\nplace gpu0 under hb0\n", "t:3", "already in the tree"},
                {"host-bridge hb0 routes-everything\n", "t:1", "routes-p2p"},
                {"host-bridge hb0\nacs hb0 sometimes\n", "t:2", "redirect|direct"},
                {"host-bridge hb0\nno-atomic-routing hb0\n", "t:2", "routes-atomics"},
                {"host-bridge hb0\nplace 0000:00:02.0 under hb0\n", "t:2", "PCI address"},
                {"frobnicate a b\n", "t:1", "rules are bar, no-p2p, atomics, host-bridge"},
        };
        for (String[] c : cases) {
            String m = assertThrows(IOException.class, () -> tree(c[0]), c[0]).getMessage();
            assertTrue(m.contains(c[1]) && m.contains(c[2]), c[0] + " -> " + m);
        }
        String m = assertThrows(IOException.class, () -> tree("host-bridge hb0\nplace gpu0 under 0000:00:09.0\n")).getMessage();
        assertTrue(m.contains("t:2") && m.contains("no PCI node 0000:00:09.0"), m);
    }

    /** The test VM's tree: a software device placed on its root bus, vda where sysfs says. */
    @Test
    void theVmsDiskIsReachedThroughItsHostBridgeOnlyWhereTheKernelWould() throws Exception {
        FakeSysfs vm = FakeSysfs.vm(dir);
        PciTree intel = vm.read("GenuineIntel", 6);
        Topology t = Topology.parse("place gpu0 under pci0000:00\n", "t", intel);
        Topology.Endpoint vda = t.endpoint("vda", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:00:02.0"), 1L << 30);
        Reach r = t.peerPath(sw(t, "gpu0"), vda);
        assertInstanceOf(Reach.Refused.class, r, r.toString());
        assertEquals(2, r.distance());
        assertEquals("gpu0 > pci0000:00 > 0000:00:02.0", r.route());
        assertTrue(r.why().contains("8086:0d57") && r.why().contains("whitelist"), r.why());

        Topology amd = Topology.parse("place gpu0 under pci0000:00\n", "t", vm.read("AuthenticAMD", 25));
        Topology.Endpoint vda2 = amd.endpoint("vda", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:00:02.0"), 1L << 30);
        Reach ok = amd.peerPath(sw(amd, "gpu0"), vda2);
        assertInstanceOf(Reach.ThroughHostBridge.class, ok, ok.toString());
        assertTrue(ok.why().contains("AMD"), ok.why());
        Reach atomics = amd.atomicPath(sw(amd, "gpu0"), vda2);
        assertFalse(atomics.allowed());
        assertTrue(atomics.why().contains("root bus"), "the first thing missing is a root port: " + atomics.why());

        Topology declared = Topology.parse("host-bridge pci0000:00 routes-p2p routes-atomics\nplace gpu0 under pci0000:00\n", "t", intel);
        Topology.Endpoint vda3 = declared.endpoint("vda", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:00:02.0"), 1L << 30);
        assertTrue(declared.peerToPeer(sw(declared, "gpu0"), vda3));
        Reach conventional = declared.atomicPath(sw(declared, "gpu0"), vda3);
        assertTrue(conventional.why().contains("0000:00:02.0 (1af4:1042) has no PCI Express capability"), conventional.why());
    }

    /** A real switch whose downstream ports have ACS P2P Request Redirect set in config space. */
    @Test
    void acsReadFromConfigSpaceRedirects() throws Exception {
        FakeSysfs s = new FakeSysfs(dir);
        String rp = "devices/pci0000:00/0000:00:01.0", up = rp + "/0000:01:00.0";
        s.function("devices/pci0000:00/0000:00:00.0", FakeSysfs.config(0x8086, 0x0d57, 0x060000, -1, 0, 0, -1));
        s.function(rp, FakeSysfs.config(0x8086, 0x1234, 0x060400, ConfigSpace.TYPE_ROOT_PORT, 0x40, 0, 0));
        s.function(up, FakeSysfs.config(0x10b5, 0x8747, 0x060400, ConfigSpace.TYPE_UPSTREAM, 0x40, 0, 0));
        for (int port = 0; port < 2; port++) {
            String dp = up + "/0000:02:0" + port + ".0";
            s.function(dp, FakeSysfs.config(0x10b5, 0x8747, 0x060400, ConfigSpace.TYPE_DOWNSTREAM, 0x40, 0,
                    port == 1 ? ConfigSpace.Acs.REQUEST_REDIRECT : 0));
            s.function(dp + "/0000:0" + (3 + port) + ":00.0", FakeSysfs.config(0x10de, 0x2330, 0x030200, ConfigSpace.TYPE_ENDPOINT, 0x180, 0, -1));
        }
        PciTree machine = s.read("GenuineIntel", 6);
        Topology t = Topology.parse("", "t", machine);
        Topology.Endpoint a = t.endpoint("nvme0n1", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:03:00.0"), 1);
        Topology.Endpoint b = t.endpoint("nvme1n1", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:04:00.0"), 1);
        Reach r = t.peerPath(a, b);
        assertInstanceOf(Reach.Refused.class, r, r.toString());
        assertTrue(r.why().contains("ACS P2P Request Redirect is set on 0000:02:01.0") && r.why().contains("0x0004"), r.why());
        assertEquals(4, r.distance());
        // Redirected, a request goes up to the root complex and back down the same switch.
        assertEquals("0000:03:00.0 > 0000:02:00.0 > 0000:01:00.0 > 0000:00:01.0 > pci0000:00 > 0000:00:01.0 > 0000:01:00.0 > 0000:02:01.0 > 0000:04:00.0", r.route());
        Topology cleared = Topology.parse("acs 0000:02:01.0 direct\n", "t", machine);
        Reach ok = cleared.peerPath(cleared.endpoint("x", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:03:00.0"), 1),
                cleared.endpoint("y", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:04:00.0"), 1));
        assertInstanceOf(Reach.Direct.class, ok, ok.toString());
        assertEquals("0000:03:00.0 > 0000:02:00.0 > 0000:01:00.0 > 0000:02:01.0 > 0000:04:00.0", ok.route());
        assertTrue(cleared.atomics(cleared.endpoint("x", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:03:00.0"), 1),
                cleared.endpoint("y", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:04:00.0"), 1)),
                "switch ports route atomics and the GPU completes 64-bit ones, per their config space");
    }

    /**
     * ACS read from config space on the shared bridge counts as on the ports below it, and an
     * unread ACS capability there (a 256-byte config space: not root) refuses, as below the split.
     */
    @Test
    void acsOfTheSharedSwitchPortIsReadToo() throws Exception {
        for (int upAcs : new int[] {ConfigSpace.Acs.REQUEST_REDIRECT, -1, 0}) {
            FakeSysfs s = new FakeSysfs(dir.resolve("up" + upAcs));
            String rp = "devices/pci0000:00/0000:00:01.0", up = rp + "/0000:01:00.0";
            s.function("devices/pci0000:00/0000:00:00.0", FakeSysfs.config(0x8086, 0x0d57, 0x060000, -1, 0, 0, -1));
            s.function(rp, FakeSysfs.config(0x8086, 0x1234, 0x060400, ConfigSpace.TYPE_ROOT_PORT, 0x40, 0, 0));
            s.function(up, FakeSysfs.config(0x10b5, 0x8747, 0x060400, ConfigSpace.TYPE_UPSTREAM, 0x40, 0, upAcs));
            for (int port = 0; port < 2; port++) {
                String dp = up + "/0000:02:0" + port + ".0";
                s.function(dp, FakeSysfs.config(0x10b5, 0x8747, 0x060400, ConfigSpace.TYPE_DOWNSTREAM, 0x40, 0, 0));
                s.function(dp + "/0000:0" + (3 + port) + ":00.0", FakeSysfs.config(0x10de, 0x2330, 0x030200, ConfigSpace.TYPE_ENDPOINT, 0x180, 0, -1));
            }
            Topology t = Topology.parse("", "t", s.read("GenuineIntel", 6));
            Reach r = t.peerPath(t.endpoint("nvme0n1", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:03:00.0"), 1),
                    t.endpoint("nvme1n1", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:04:00.0"), 1));
            switch (upAcs) {
                case 0 -> assertInstanceOf(Reach.Direct.class, r, r.toString());
                case -1 -> {
                    assertInstanceOf(Reach.Refused.class, r, r.toString());
                    assertTrue(r.why().contains("0000:01:00.0's ACS capability is unread") && r.why().contains("unknown"), r.why());
                }
                default -> {
                    assertInstanceOf(Reach.Refused.class, r, r.toString());
                    assertTrue(r.why().contains("ACS P2P Request Redirect is set on 0000:01:00.0"), r.why());
                }
            }
        }
    }

    /**
     * A file that places devices answers only for what it placed: a device it did not place (a
     * typo) and a block device whose function is not in the tree are refused; a loop device (no
     * PCI function) keeps the default answer; a file that places nothing keeps it for everyone.
     */
    @Test
    void aDeviceTheFileDidNotPlaceIsRefusedWhereItPlacesOthers() throws Exception {
        Topology t = tree("host-bridge hb0\nswitch sw0 under hb0\nplace gpu0 under sw0\nplace nic0 under sw0\n");
        Reach typo = t.peerPath(sw(t, "gpu0"), sw(t, "nic1"));
        assertInstanceOf(Reach.Refused.class, typo, typo.toString());
        assertTrue(typo.why().contains("nic1 is not placed: add 'place nic1 under PARENT' to t"), typo.why());
        assertFalse(t.atomics(sw(t, "gpu0"), sw(t, "nic1")));
        Reach typoFirst = t.peerPath(sw(t, "gpu1"), sw(t, "nic0"));
        assertTrue(typoFirst.why().contains("gpu1 is not placed"), typoFirst.why());

        Topology.Endpoint nvme = t.endpoint("nvme0n1", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:00:09.0"), 1L << 30);
        Reach missing = t.peerPath(sw(t, "gpu0"), nvme);
        assertInstanceOf(Reach.Refused.class, missing, missing.toString());
        assertTrue(missing.why().contains("nvme0n1's PCI function 0000:00:09.0 is not in the PCI tree"), missing.why());

        Topology.Endpoint loop = t.endpoint("loop0", Topology.Kind.BLOCK_DEVICE, Optional.empty(), 1L << 30);
        Reach virtual = t.peerPath(sw(t, "gpu0"), loop);
        assertInstanceOf(Reach.Direct.class, virtual, virtual.toString());
        assertEquals(Topology.ONE_SWITCH, virtual.distance());

        Topology nothingPlaced = tree("host-bridge hb0\nswitch sw0 under hb0\n");
        assertInstanceOf(Reach.Direct.class, nothingPlaced.peerPath(sw(nothingPlaced, "gpu0"), sw(nothingPlaced, "nic1")));
        Topology.Endpoint nvme2 = nothingPlaced.endpoint("nvme0n1", Topology.Kind.BLOCK_DEVICE, Optional.of("0000:00:09.0"), 1L << 30);
        assertInstanceOf(Reach.Direct.class, nothingPlaced.peerPath(sw(nothingPlaced, "gpu0"), nvme2));
    }
}
