package io.directmap.pci;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * What a function's configuration space says about peer-to-peer and atomics, parsed from the bytes
 * of sysfs's {@code config} file (include/uapi/linux/pci_regs.h names every offset used here).
 * Everyone may read the first 64 or 256 bytes; the extended capabilities (ACS among them) lie past
 * 256 and only root reads them. Nothing here throws on short or odd bytes: what could not be read
 * is a note that says why, and the part is empty.
 *
 * @param vendor the Vendor ID (offset 0x00), -1 where the bytes stop short of it
 * @param device the Device ID (offset 0x02), -1 where the bytes stop short of it
 * @param classCode base class, subclass and programming interface (0x060400: a PCI-to-PCI bridge)
 * @param length how many bytes were readable
 * @param pcie the PCI Express capability (ID 0x10), empty for conventional PCI
 * @param acs the ACS extended capability (ID 0x000D), empty where absent or unreadable
 * @param headerType the Header Type's layout (offset 0x0e, without the multi-function bit): 0 an
 *        endpoint, 1 a PCI-to-PCI bridge; -1 where unreadable
 * @param extendedReadable whether the bytes reach the extended capabilities (4096 bytes: root)
 * @param notes what could not be read, and why, for a person
 */
public record ConfigSpace(int vendor, int device, int classCode, int headerType, int length,
                          Optional<Pcie> pcie, Optional<Acs> acs, boolean extendedReadable, List<String> notes) {
    static final int CAP_ID_EXP = 0x10, EXT_CAP_ID_ACS = 0x000d;

    /** PCI Express port types (PCI_EXP_FLAGS_TYPE, bits 7:4 of the capability's flags). */
    public static final int TYPE_ENDPOINT = 0x0, TYPE_LEGACY_ENDPOINT = 0x1, TYPE_ROOT_PORT = 0x4,
            TYPE_UPSTREAM = 0x5, TYPE_DOWNSTREAM = 0x6, TYPE_PCIE_TO_PCI = 0x7, TYPE_PCI_TO_PCIE = 0x8,
            TYPE_RC_INTEGRATED = 0x9, TYPE_RC_EVENT_COLLECTOR = 0xa;

    /**
     * The PCI Express capability: port type, Device Capabilities 2 (PCI_EXP_DEVCAP2, +0x24) and
     * Device Control 2 (PCI_EXP_DEVCTL2, +0x28); both are zero in a version 1 capability.
     *
     * @param portType the Device/Port Type (one of the TYPE_ constants)
     * @param devCap2  the Device Capabilities 2 register
     * @param devCtl2  the Device Control 2 register
     */
    public record Pcie(int portType, int devCap2, int devCtl2) {
        /** {@return whether the port forwards AtomicOp requests (PCI_EXP_DEVCAP2_ATOMIC_ROUTE)} */
        public boolean routesAtomics() { return (devCap2 & 0x40) != 0; }
        /** {@return whether the function completes 32-bit AtomicOps (PCI_EXP_DEVCAP2_ATOMIC_COMP32)} */
        public boolean completes32() { return (devCap2 & 0x80) != 0; }
        /** {@return whether the function completes 64-bit AtomicOps (PCI_EXP_DEVCAP2_ATOMIC_COMP64)} */
        public boolean completes64() { return (devCap2 & 0x100) != 0; }
        /** {@return whether the function completes 128-bit CAS (PCI_EXP_DEVCAP2_ATOMIC_COMP128)} */
        public boolean completes128() { return (devCap2 & 0x200) != 0; }
        /** {@return whether the port drops AtomicOps it would send out (PCI_EXP_DEVCTL2_ATOMIC_EGRESS_BLOCK)} */
        public boolean egressBlocked() { return (devCtl2 & 0x80) != 0; }

        /** {@return the port type in the PCIe specification's words ("switch downstream port")} */
        public String portTypeName() {
            return switch (portType) {
                case TYPE_ENDPOINT -> "endpoint";
                case TYPE_LEGACY_ENDPOINT -> "legacy endpoint";
                case TYPE_ROOT_PORT -> "root port";
                case TYPE_UPSTREAM -> "switch upstream port";
                case TYPE_DOWNSTREAM -> "switch downstream port";
                case TYPE_PCIE_TO_PCI -> "PCIe-to-PCI bridge";
                case TYPE_PCI_TO_PCIE -> "PCI-to-PCIe bridge";
                case TYPE_RC_INTEGRATED -> "root complex integrated endpoint";
                case TYPE_RC_EVENT_COLLECTOR -> "root complex event collector";
                default -> "port type " + portType;
            };
        }
    }

    /**
     * The ACS (Access Control Services) capability's Capability and Control registers
     * (PCI_ACS_CAP +4, PCI_ACS_CTRL +6).
     *
     * @param capability the ACS Capability register: which controls the port implements
     * @param control    the ACS Control register: which it has enabled
     */
    public record Acs(int capability, int control) {
        /** The ACS bits (PCI_ACS_SV, _TB, _RR, _CR, _UF, _EC, _DT), the same in both registers. */
        public static final int SOURCE_VALIDATION = 0x01, TRANSLATION_BLOCKING = 0x02, REQUEST_REDIRECT = 0x04,
                COMPLETION_REDIRECT = 0x08, UPSTREAM_FORWARDING = 0x10, EGRESS_CONTROL = 0x20, DIRECT_TRANSLATED = 0x40;

        /**
         * The control bits that send peer traffic up to the root complex instead of across: the
         * ones pci_bridge_has_acs_redir() tests (PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_EC), by name.
         *
         * @return the names of those enabled, empty when peer traffic goes across
         */
        public List<String> redirects() {
            List<String> on = new ArrayList<>();
            if ((control & REQUEST_REDIRECT) != 0) on.add("P2P Request Redirect");
            if ((control & COMPLETION_REDIRECT) != 0) on.add("P2P Completion Redirect");
            if ((control & EGRESS_CONTROL) != 0) on.add("P2P Egress Control");
            return on;
        }

        /** {@return whether Upstream Forwarding is enabled (PCI_ACS_UF)} */
        public boolean upstreamForwarding() { return (control & UPSTREAM_FORWARDING) != 0; }
    }

    /**
     * Parses what could be read of a config space; never throws.
     *
     * @param b the bytes of sysfs's {@code config} file, as many as could be read
     * @return what they say; what they could not say is a note
     */
    public static ConfigSpace parse(byte[] b) {
        List<String> notes = new ArrayList<>();
        int len = b.length;
        if (len < 64) {
            notes.add("config space is " + len + " bytes; the header alone is 64");
            return new ConfigSpace(len >= 2 ? u16(b, 0) : -1, len >= 4 ? u16(b, 2) : -1,
                    len >= 0x0c ? (u8(b, 0x0b) << 16) | (u8(b, 0x0a) << 8) | u8(b, 0x09) : -1,
                    len > 0x0e ? u8(b, 0x0e) & 0x7f : -1, len, Optional.empty(), Optional.empty(), false, List.copyOf(notes));
        }
        int classCode = (u8(b, 0x0b) << 16) | (u8(b, 0x0a) << 8) | u8(b, 0x09);
        Optional<Pcie> pcie = Optional.empty();
        // PCI_STATUS_CAP_LIST says a capability list starts at PCI_CAPABILITY_LIST.
        if ((u16(b, 0x06) & 0x10) != 0) {
            int ptr = u8(b, 0x34) & 0xfc;
            for (int hops = 0; ptr != 0; hops++) {
                if (hops == 48 || ptr < 0x40 || ptr + 2 > len) {
                    if (ptr + 2 > len) notes.add("capability at 0x" + Integer.toHexString(ptr) + " lies past the " + len + " bytes read");
                    else notes.add("capability list is malformed at 0x" + Integer.toHexString(ptr));
                    break;
                }
                if (u8(b, ptr) == CAP_ID_EXP) {
                    if (ptr + 4 > len) {
                        notes.add("PCI Express capability at 0x" + Integer.toHexString(ptr) + " is cut short");
                        break;
                    }
                    int flags = u16(b, ptr + 2);
                    boolean v2 = (flags & 0xf) >= 2 && ptr + 0x2c <= len;
                    pcie = Optional.of(new Pcie((flags >> 4) & 0xf, v2 ? u32(b, ptr + 0x24) : 0, v2 ? u16(b, ptr + 0x28) : 0));
                    break;
                }
                ptr = u8(b, ptr + 1) & 0xfc;
            }
        }
        Optional<Acs> acs = Optional.empty();
        boolean extended = len >= 0x104;
        if (!extended && pcie.isPresent()) {
            notes.add("extended capabilities (ACS) unread: config space is " + len + " bytes (only root reads 4096)");
        }
        if (extended) {
            int ptr = 0x100;
            for (int hops = 0; ptr != 0; hops++) {
                if (hops == 512 || ptr < 0x100 || ptr + 4 > len) {
                    notes.add("extended capability list is malformed at 0x" + Integer.toHexString(ptr));
                    break;
                }
                int header = u32(b, ptr);
                if (header == 0 || header == -1) break;
                if ((header & 0xffff) == EXT_CAP_ID_ACS) {
                    if (ptr + 8 > len) {
                        notes.add("ACS capability at 0x" + Integer.toHexString(ptr) + " is cut short");
                        break;
                    }
                    acs = Optional.of(new Acs(u16(b, ptr + 4), u16(b, ptr + 6)));
                    break;
                }
                ptr = (header >>> 20) & 0xffc;
            }
        }
        return new ConfigSpace(u16(b, 0), u16(b, 2), classCode, u8(b, 0x0e) & 0x7f, len, pcie, acs, extended, List.copyOf(notes));
    }

    /** {@return vendor and device ID as lspci writes them: "1af4:1042"} */
    public String id() {
        return String.format("%04x:%04x", vendor & 0xffff, device & 0xffff);
    }

    private static int u8(byte[] b, int at) { return b[at] & 0xff; }

    private static int u16(byte[] b, int at) { return u8(b, at) | u8(b, at + 1) << 8; }

    private static int u32(byte[] b, int at) { return u16(b, at) | u16(b, at + 2) << 16; }
}
