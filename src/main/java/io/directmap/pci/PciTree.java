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
    public static final PciTree EMPTY = new PciTree(Map.of(), Map.of(), Optional.empty(), List.of());

    /** "0000:00:02.0": a function's address; "pci0000:00": a host bridge's sysfs name (VMD domains have 5 digits). */
    static final String FUNCTION = "[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]", HOST = "pci[0-9a-f]{4,8}:[0-9a-f]{2}";

    public PciTree {
        nodes = Collections.unmodifiableMap(new LinkedHashMap<>(nodes));
        blockDevices = Collections.unmodifiableMap(new LinkedHashMap<>(blockDevices));
        problems = List.copyOf(problems);
    }

    public enum Kind {
        HOST_BRIDGE("host bridge"), ROOT_PORT("root port"), SWITCH_UPSTREAM("switch upstream port"),
        SWITCH_DOWNSTREAM("switch downstream port"), PCI_BRIDGE("PCI bridge"), ENDPOINT("endpoint"),
        DEVICE("device");

        private final String label;

        Kind(String label) { this.label = label; }

        public String label() { return label; }

        /** Whether other nodes can sit below it. */
        public boolean bridge() { return this != ENDPOINT && this != DEVICE; }

        /** A PCI Express port, the only kind that can forward AtomicOps (conventional PCI cannot carry them). */
        public boolean expressPort() { return this == ROOT_PORT || this == SWITCH_UPSTREAM || this == SWITCH_DOWNSTREAM; }
    }

    /** A BAR (index 0-5) of a function: its size and its kind (io, mem32, mem64, prefetchable). */
    public record Bar(int index, long bytes, String flags) {}

    /**
     * One node. parent is null for a host bridge; id is "vendor:device" for a real function and
     * empty for what a topology file declares; config is the parsed config space of a real one.
     */
    public record Node(String name, Kind kind, String parent, String id, String description, List<Bar> bars,
                       Optional<ConfigSpace> config, boolean declared, List<String> notes) {
        public Node {
            bars = List.copyOf(bars);
            notes = List.copyOf(notes);
        }

        static Node declared(String name, Kind kind, String parent, String description) {
            return new Node(name, kind, parent, "", description, List.of(), Optional.empty(), true, List.of());
        }
    }

    /** Where a block device sits: its function's address, or why it has none; sizeBytes is 0 for an empty one (a loop device with no file). */
    public record BlockFunction(String name, Optional<String> function, String why, long sizeBytes) {}

    /** The host bridge's own function that the kernel's whitelist is keyed by: 00.0 or a root port, first on its bus. */
    public Optional<Node> hostBridgeFunction(String hostBridge) {
        return nodes.values().stream()
                .filter(n -> hostBridge.equals(n.parent()) && n.config().isPresent())
                .findFirst()
                .filter(n -> n.name().endsWith(":00.0") || n.kind() == Kind.ROOT_PORT);
    }
}
