package io.directmap.pci;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A machine's PCI hierarchy as sysfs shows it (see {@link SysfsPci}), or the empty one: host
 * bridges, the bridges below them, the functions, and which block device sits on which function.
 * A topology file adds to it (switches, software devices) without changing it.
 *
 * @param nodes every node by name: host bridges as "pci0000:00", functions by address
 * @param blockDevices whole-disk block devices by name, with their function's address where they
 *     have one, or why not ("no PCI function: a virtual device")
 * @param cpuRoutesP2p why this machine's CPU routes peer traffic through every host bridge (the
 *     kernel's cpu_supports_p2pdma: AMD Zen and later), empty where it does not
 * @param problems what could not be read, said once (no /sys/bus/pci, an unreadable file)
 */
public record PciTree(Map<String, Node> nodes, Map<String, BlockFunction> blockDevices,
                      Optional<String> cpuRoutesP2p, List<String> problems) {
    /** The tree of a machine that shows no PCI bus, with no problem noted: what a topology file alone builds on. */
    public static final PciTree EMPTY = new PciTree(Map.of(), Map.of(), Optional.empty(), List.of());

    /** "0000:00:02.0": a function's address; "pci0000:00": a host bridge's sysfs name (VMD domains have 5 digits). */
    static final String FUNCTION = "[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]", HOST = "pci[0-9a-f]{4,8}:[0-9a-f]{2}";

    /**
     * A tree; the maps keep their order (host bridges first, then functions by address) and are copied.
     *
     * @param nodes        every node by name
     * @param blockDevices whole-disk block devices by name
     * @param cpuRoutesP2p why the CPU routes peer traffic through every host bridge, or empty
     * @param problems     what could not be read
     */
    public PciTree {
        nodes = Collections.unmodifiableMap(new LinkedHashMap<>(nodes));
        blockDevices = Collections.unmodifiableMap(new LinkedHashMap<>(blockDevices));
        problems = List.copyOf(problems);
    }

    /** What a node of the hierarchy is, in PCIe's words. */
    public enum Kind {
        /** The root complex's bridge to a PCI domain and bus (sysfs's pciDDDD:BB); not a function. */
        HOST_BRIDGE("host bridge"),
        /** A PCI Express Root Port: a bridge of the root complex with one link below it. */
        ROOT_PORT("root port"),
        /** A switch's Upstream Port: its link towards the root. */
        SWITCH_UPSTREAM("switch upstream port"),
        /** A switch's Downstream Port: one link below the switch. */
        SWITCH_DOWNSTREAM("switch downstream port"),
        /** A conventional PCI-to-PCI bridge (or a PCIe-to-PCI one). */
        PCI_BRIDGE("PCI bridge"),
        /** A function that is no bridge: a disk's controller, a GPU. */
        ENDPOINT("endpoint"),
        /** A software device a topology file places on the tree. */
        DEVICE("device");

        private final String label;

        Kind(String label) { this.label = label; }

        /** {@return the kind as dmap topology prints it ("switch upstream port")} */
        public String label() { return label; }

        /** {@return whether other nodes can sit below it} */
        public boolean bridge() { return this != ENDPOINT && this != DEVICE; }

        /** {@return whether it is a PCI Express port, the only kind that can forward AtomicOps (conventional PCI cannot carry them)} */
        public boolean expressPort() { return this == ROOT_PORT || this == SWITCH_UPSTREAM || this == SWITCH_DOWNSTREAM; }
    }

    /**
     * A Base Address Register of a function, as sysfs's {@code resource} file shows it.
     *
     * @param index which BAR, 0 to 5
     * @param bytes the size of the range it decodes
     * @param flags its kind: io, mem32, mem64, with prefetchable where it is
     */
    public record Bar(int index, long bytes, String flags) {}

    /**
     * One node. parent is null for a host bridge; id is "vendor:device" for a real function and
     * empty for what a topology file declares; config is the parsed config space of a real one.
     *
     * @param name        a function's address ("0000:00:02.0"), a host bridge's sysfs name, or a declared name
     * @param kind        what it is
     * @param parent      the node above it, or null for a host bridge
     * @param id          "vendor:device" of a real function, empty for a declared node
     * @param description what it is, for a person (the class's name, or what the topology file says)
     * @param bars        a real function's BARs with a nonzero size
     * @param config      a real function's parsed config space
     * @param declared    whether a topology file declared it (rather than sysfs showing it)
     * @param notes       what could not be read of it, and why
     */
    public record Node(String name, Kind kind, String parent, String id, String description, List<Bar> bars,
                       Optional<ConfigSpace> config, boolean declared, List<String> notes) {
        /**
         * A node; bars and notes are copied.
         *
         * @param name        its name
         * @param kind        what it is
         * @param parent      the node above it, or null for a host bridge
         * @param id          "vendor:device", or empty
         * @param description what it is, for a person
         * @param bars        its BARs
         * @param config      its parsed config space, or empty
         * @param declared    whether a topology file declared it
         * @param notes       what could not be read of it
         */
        public Node {
            bars = List.copyOf(bars);
            notes = List.copyOf(notes);
        }

        static Node declared(String name, Kind kind, String parent, String description) {
            return new Node(name, kind, parent, "", description, List.of(), Optional.empty(), true, List.of());
        }
    }

    /**
     * Where a block device sits on the bus.
     *
     * @param name      the whole disk's name ("nvme0n1")
     * @param function  its function's address, where it has one
     * @param why       why it has none ("no PCI function: a virtual device"), empty where it has one
     * @param sizeBytes its size; 0 for an empty one (a loop device with no file)
     */
    public record BlockFunction(String name, Optional<String> function, String why, long sizeBytes) {}

    /**
     * The host bridge's own function that the kernel's whitelist (pci_p2pdma_whitelist) is keyed
     * by: as pci_host_bridge_dev(), the first function on its root bus, and only where that one is
     * at device 0, function 0 (a root bus that starts with a root port at 01.0 has none).
     *
     * @param hostBridge the host bridge's sysfs name ("pci0000:00")
     * @return that function, or empty where sysfs shows none at 00.0 with a config space
     */
    Optional<Node> hostBridgeFunction(String hostBridge) {
        // Addresses are fixed-width hex ("0000:00:01.0"), so by name is by devfn: the scan order.
        return nodes.values().stream()
                .filter(n -> hostBridge.equals(n.parent()) && n.kind() != Kind.HOST_BRIDGE)
                .min(java.util.Comparator.comparing(Node::name))
                .filter(n -> n.name().endsWith(":00.0") && n.config().isPresent());
    }
}
