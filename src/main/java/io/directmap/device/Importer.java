package io.directmap.device;

import io.directmap.pci.Topology.Endpoint;

/**
 * The proposal's importer: a device that asks device_map for direct access to a vma (step 2 and
 * 3), mirrors what it was given, and lets go when an invalidation reaches it through its interval
 * notifiers. The contract needs only who it is and where it sits on the bus, so any driver can
 * implement it; how a device accesses a mapping is its own ({@link SoftwareDevice#access},
 * {@link SoftwareDevice#bind} for the built-in software devices).
 */
public interface Importer extends AutoCloseable {
    /** {@return the name refusals, tables and events give: gpu0, nic1} */
    String name();

    /** {@return where the device sits on the bus: what the block device or exporter checks a peer-to-peer path to} */
    Endpoint endpoint();

    /** Lets go of everything the device holds; nothing of it reads afterwards. */
    @Override
    void close();
}
