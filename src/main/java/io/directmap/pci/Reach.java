package io.directmap.pci;

/**
 * Whether one device can reach another's memory across the bus, after Linux's
 * pci_p2pdma_distance(): straight through the bridge they share, up through the host bridge, or
 * not at all. distance counts the ports crossed as the kernel does (two devices under one switch:
 * 4); route names them from the device that asks to the one that answers; why says, for a person,
 * what decided (which rule, which bridge, which bit).
 */
public sealed interface Reach {
    int distance();

    String route();

    String why();

    default boolean allowed() { return !(this instanceof Refused); }

    /** Under a bridge they share, nothing redirecting (PCI_P2PDMA_MAP_BUS_ADDR). */
    record Direct(int distance, String route, String why) implements Reach {}

    /** Up through a host bridge that routes peer traffic (PCI_P2PDMA_MAP_THRU_HOST_BRIDGE). */
    record ThroughHostBridge(int distance, String route, String hostBridge, String why) implements Reach {}

    /** No path (PCI_P2PDMA_MAP_NOT_SUPPORTED); distance is -1 where the devices are not in one tree. */
    record Refused(int distance, String route, String why) implements Reach {}

    /** "direct", "host-bridge" or "none", as --json writes it. */
    default String kind() {
        return switch (this) {
            case Direct d -> "direct";
            case ThroughHostBridge h -> "host-bridge";
            case Refused r -> "none";
        };
    }
}
