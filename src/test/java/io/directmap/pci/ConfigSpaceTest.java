package io.directmap.pci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Config space parsed from the test VM's captured bytes and from hand-made ones with ACS and atomics bits set. */
class ConfigSpaceTest {
    @Test
    void theVirtioDiskIsConventionalPciWithoutAtomicsOrAcs() {
        ConfigSpace cs = ConfigSpace.parse(FakeSysfs.resource("0000:00:02.0.config"));
        assertEquals("1af4:1042", cs.id());
        assertEquals(0x018000, cs.classCode());
        assertEquals(256, cs.length());
        assertTrue(cs.pcie().isEmpty(), "virtio-pci here has only vendor and MSI-X capabilities: " + cs);
        assertTrue(cs.acs().isEmpty());
        assertFalse(cs.extendedReadable());
        assertEquals(List.of(), cs.notes());
    }

    @Test
    void theHostBridgeFunctionReadsAsRootReadsIt() {
        ConfigSpace cs = ConfigSpace.parse(FakeSysfs.resource("0000:00:00.0.config"));
        assertEquals("8086:0d57", cs.id());
        assertEquals(0x060000, cs.classCode());
        assertEquals(4096, cs.length());
        assertTrue(cs.extendedReadable());
        assertTrue(cs.acs().isEmpty());
    }

    @Test
    void aRootPortWithAtomicsAndAcsBitsSet() {
        int devCap2 = 0x40 | 0x80 | 0x100;      // routing, 32- and 64-bit completer, no 128-bit CAS
        int acs = ConfigSpace.Acs.REQUEST_REDIRECT | ConfigSpace.Acs.COMPLETION_REDIRECT | ConfigSpace.Acs.UPSTREAM_FORWARDING;
        ConfigSpace cs = ConfigSpace.parse(FakeSysfs.config(0x8086, 0x2030, 0x060400, ConfigSpace.TYPE_ROOT_PORT, devCap2, 0x80, acs));
        ConfigSpace.Pcie e = cs.pcie().orElseThrow();
        assertEquals(ConfigSpace.TYPE_ROOT_PORT, e.portType());
        assertEquals("root port", e.portTypeName());
        assertTrue(e.routesAtomics() && e.completes32() && e.completes64());
        assertFalse(e.completes128());
        assertTrue(e.egressBlocked());
        ConfigSpace.Acs a = cs.acs().orElseThrow();
        assertEquals(List.of("P2P Request Redirect", "P2P Completion Redirect"), a.redirects());
        assertTrue(a.upstreamForwarding());
        assertEquals(List.of(), cs.notes());
        assertEquals(PciTree.Kind.ROOT_PORT, SysfsPci.kind(cs.classCode(), cs.pcie()));
    }

    @Test
    void eachCompleterWidthIsItsOwnBit() {
        ConfigSpace.Pcie only32 = ConfigSpace.parse(FakeSysfs.config(0x10de, 1, 0x030200, ConfigSpace.TYPE_ENDPOINT, 0x80, 0, -1)).pcie().orElseThrow();
        assertTrue(only32.completes32());
        assertFalse(only32.completes64() || only32.completes128() || only32.routesAtomics());
        ConfigSpace.Pcie only64 = ConfigSpace.parse(FakeSysfs.config(0x10de, 1, 0x030200, ConfigSpace.TYPE_ENDPOINT, 0x100, 0, -1)).pcie().orElseThrow();
        assertTrue(only64.completes64());
        assertFalse(only64.completes32() || only64.completes128());
        ConfigSpace.Pcie cas = ConfigSpace.parse(FakeSysfs.config(0x10de, 1, 0x030200, ConfigSpace.TYPE_ENDPOINT, 0x200, 0, -1)).pcie().orElseThrow();
        assertTrue(cas.completes128());
        assertFalse(cas.completes32() || cas.completes64() || cas.egressBlocked());
    }

    @Test
    void aSwitchPortWithNothingSetRedirectsNothing() {
        ConfigSpace cs = ConfigSpace.parse(FakeSysfs.config(0x10b5, 0x8747, 0x060400, ConfigSpace.TYPE_DOWNSTREAM, 0, 0, 0));
        assertEquals(List.of(), cs.acs().orElseThrow().redirects());
        assertFalse(cs.pcie().orElseThrow().routesAtomics());
        assertEquals(PciTree.Kind.SWITCH_DOWNSTREAM, SysfsPci.kind(cs.classCode(), cs.pcie()));
    }

    @Test
    void withoutRootTheAcsCapabilityIsSaidToBeUnread() {
        byte[] full = FakeSysfs.config(0x10b5, 0x8747, 0x060400, ConfigSpace.TYPE_DOWNSTREAM, 0, 0, ConfigSpace.Acs.REQUEST_REDIRECT);
        ConfigSpace cs = ConfigSpace.parse(Arrays.copyOf(full, 256));
        assertTrue(cs.acs().isEmpty());
        assertTrue(cs.notes().stream().anyMatch(n -> n.contains("ACS") && n.contains("256 bytes") && n.contains("root")), cs.notes().toString());
    }

    @Test
    void shortOrLoopingBytesAreNotesNeverExceptions() {
        ConfigSpace empty = ConfigSpace.parse(new byte[0]);
        assertEquals(0, empty.length());
        assertTrue(empty.notes().getFirst().contains("0 bytes"), empty.notes().toString());
        ConfigSpace ten = ConfigSpace.parse(Arrays.copyOf(FakeSysfs.resource("0000:00:02.0.config"), 10));
        assertEquals("1af4:1042", ten.id());
        assertTrue(ten.pcie().isEmpty());

        byte[] loop = FakeSysfs.config(0x1234, 0x5678, 0x020000, ConfigSpace.TYPE_ENDPOINT, 0, 0, -1);
        loop[0x40] = 0x09;          // not PCIe: vendor specific ...
        loop[0x41] = 0x40;          // ... whose next is itself
        ConfigSpace cs = ConfigSpace.parse(loop);
        assertTrue(cs.pcie().isEmpty());
        assertTrue(cs.notes().stream().anyMatch(n -> n.contains("malformed")), cs.notes().toString());

        byte[] past = FakeSysfs.config(0x1234, 0x5678, 0x020000, ConfigSpace.TYPE_ENDPOINT, 0, 0, -1);
        past[0x34] = (byte) 0xfc;   // a capability where 64 readable bytes end
        ConfigSpace cut = ConfigSpace.parse(Arrays.copyOf(past, 64));
        assertTrue(cut.notes().stream().anyMatch(n -> n.contains("past the 64 bytes")), cut.notes().toString());
    }
}
