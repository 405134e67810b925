package io.directmap.pci;

/**
 * Whether one device can reach another's memory across the bus, after Linux's
 * pci_p2pdma_distance(): straight through the bridge they share, up through the host bridge, or
 * not at all. distance counts the ports crossed as the kernel does (two devices under one switch:
 * 4); route names them from the device that asks to the one that answers; why says, for a person,
 * what decided (which rule, which bridge, which bit).
 */
public sealed interface Reach {
    /** {@return the ports crossed, counted as pci_p2pdma_distance() counts them; -1 where the devices are not in one tree} */
    int distance();

    /** {@return the ports the traffic crosses, named from the device that asks to the one that answers} */
    String route();

    /** {@return what decided, for a person: which rule, which bridge, which bit} */
    String why();

    /** {@return whether there is a path: true for {@link Direct} and {@link ThroughHostBridge}} */
    default boolean allowed() { return !(this instanceof Refused); }

    /**
     * Under a bridge they share, nothing redirecting (PCI_P2PDMA_MAP_BUS_ADDR): the peer is
     * reached by its bus address.
     *
     * @param distance the ports crossed
     * @param route    the ports, from the device that asks to the one that answers
     * @param why      what decided
     */
    record Direct(int distance, String route, String why) implements Reach {}

    /**
     * Up through a host bridge that routes peer traffic (PCI_P2PDMA_MAP_THRU_HOST_BRIDGE).
     *
     * @param distance   the ports crossed
     * @param route      the ports, from the device that asks to the one that answers
     * @param hostBridge the host bridge the traffic goes through
     * @param why        what decided (the host bridge whitelist's entry)
     */
    record ThroughHostBridge(int distance, String route, String hostBridge, String why) implements Reach {}

    /**
     * No path (PCI_P2PDMA_MAP_NOT_SUPPORTED).
     *
     * @param distance the ports crossed, or -1 where the devices are not in one tree
     * @param route    the ports as far as a path goes, from the device that asks
     * @param why      which rule said no: ACS redirection at a port, a host bridge not whitelisted, ...
     */
    record Refused(int distance, String route, String why) implements Reach {}

    /** {@return "direct", "host-bridge" or "none", as --json writes it} */
    default String kind() {
        return switch (this) {
            case Direct d -> "direct";
            case ThroughHostBridge h -> "host-bridge";
            case Refused r -> "none";
        };
    }
}
