package io.directmap;

import io.directmap.device.SoftwareDevice;
import io.directmap.lang.Closer;
import io.directmap.lang.Monitors;
import io.directmap.fs.FsStack;
import io.directmap.pci.Topology;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The entry point: the machine (which devices are peers on the bus, from a topology file or the
 * default where every device is a peer of every other), the policy by which file systems choose
 * between the direct path and the page cache, and every device made from it. Closing it closes
 * the devices (and their mappings, waiting for their reads), then the file systems' and block
 * devices' state.
 *
 * <pre>{@code
 * try (DirectMap dm = DirectMap.open();
 *      Device gpu = dm.device(DeviceKind.GPU);
 *      FileMapping m = gpu.map(Path.of("data.bin"));
 *      Read r = m.read(0, m.length())) {
 *     System.out.println(r.directBytes() + " bytes direct, " + r.fallbackBytes() + " through the page cache");
 * }
 * }</pre>
 *
 * Thread-safe.
 */
public final class DirectMap implements AutoCloseable {
    private final FsStack mm;
    private final PathPolicy policy;
    private final List<Device> devices = new ArrayList<>();   // guarded by this
    private boolean closed;                                  // guarded by this
    private boolean closeDone;                               // guarded by this: the first close has finished

    private DirectMap(FsStack mm, PathPolicy policy) {
        this.mm = mm;
        this.policy = policy;
    }

    /**
     * The default machine (every device a peer of every other) and policy ({@link PathPolicy#CACHE}).
     *
     * @return the entry point; closing it closes every device it made
     * @throws IOException when the block devices or file systems cannot be read
     */
    public static DirectMap open() throws IOException {
        return builder().open();
    }

    /** {@return options to open one with: a topology file, the policy, the price of an evicted page} */
    public static Builder builder() {
        return new Builder();
    }

    /** {@return the policy file systems follow} */
    public PathPolicy policy() { return policy; }

    /** {@return where the topology came from: a file's path, or "default topology"} */
    public String topology() { return mm.topology().source(); }

    FsStack addressSpace() { return mm; }

    /**
     * {@return what it is doing now: apertures, mappings, invalidations, the bindings' counts (as
     * {@code dmap stats} shows)}
     */
    public Stats stats() { return Stats.of(mm); }

    /**
     * A device of kind named by its kind's prefix and the lowest number free here: gpu0, then gpu1, ...
     *
     * @param kind what it is
     * @return the device, with its kind's memory; closing it closes its mappings
     * @throws IllegalStateException when this DirectMap is closed
     */
    public Device device(DeviceKind kind) {
        Objects.requireNonNull(kind, "kind");
        synchronized (this) {
            for (int n = 0; ; n++) {
                String name = kind.prefix() + n;
                if (devices.stream().noneMatch(d -> d.name().equals(name))) return device(name, kind, kind.defaultMemoryBytes());
            }
        }
    }

    /**
     * A device of kind named name (the name a topology file gives its rules by), with its kind's memory.
     *
     * @param name one word, such as gpu0
     * @param kind what it is
     * @return the device; closing it closes its mappings
     * @throws IllegalArgumentException a blank name or one with spaces, or a name another open device
     *         of this DirectMap has
     * @throws IllegalStateException when this DirectMap is closed
     */
    public Device device(String name, DeviceKind kind) {
        return device(name, kind, kind.defaultMemoryBytes());
    }

    /**
     * A device of kind named name with memoryBytes of memory.
     *
     * @param name one word, such as gpu0
     * @param kind what it is
     * @param memoryBytes its memory, which is also its aperture on the bus
     * @return the device; closing it closes its mappings
     * @throws IllegalArgumentException a blank name or one with spaces, a name another open device
     *         of this DirectMap has, or memoryBytes below 1
     * @throws IllegalStateException when this DirectMap is closed
     */
    public synchronized Device device(String name, DeviceKind kind, long memoryBytes) {
        Objects.requireNonNull(kind, "kind");
        if (closed) throw new IllegalStateException("this DirectMap is closed; open another");
        if (name == null || name.isBlank() || !name.equals(name.strip()) || name.chars().anyMatch(Character::isWhitespace)) {
            throw new IllegalArgumentException("device name '" + name + "' is blank or has spaces; give one word such as "
                    + kind.prefix() + "0, the name a topology file uses");
        }
        if (memoryBytes <= 0) throw new IllegalArgumentException(name + ": memory of " + memoryBytes + " bytes; give at least 1 byte");
        if (devices.stream().anyMatch(d -> d.name().equals(name))) {
            throw new IllegalArgumentException("a device named " + name + " is open in this DirectMap; close it first or give another name");
        }
        Device d = new Device(this, SoftwareDevice.create(name, kind.profile(), memoryBytes, mm.topology()), kind, memoryBytes);
        devices.add(d);
        return d;
    }

    /** {@return the devices open now, in the order they were made} */
    public synchronized List<Device> devices() {
        return List.copyOf(devices);
    }

    synchronized void forget(Device d) {
        devices.remove(d);
    }

    /**
     * Closes every device it made (each closes its mappings, waiting for their reads, and its
     * buffers), in the order they were made, then the file systems' and block devices' state; each
     * whatever the one before threw, the first failure thrown with the rest suppressed.
     *
     * <p>A second or concurrent close waits until the first has finished (an interrupt does not
     * end that wait) and returns without throwing; on a device's reader thread, which the first
     * close may be waiting for, it returns at once.
     *
     * @throws IOException when a mapping's file could not be unmapped, or the file systems' state let go of
     */
    @Override
    public void close() throws IOException {
        List<Device> all;
        synchronized (this) {
            if (closed) {
                if (!Device.onReaderThread()) Monitors.awaitUninterruptibly(this, () -> closeDone);
                return;
            }
            closed = true;
            all = new ArrayList<>(devices);
        }
        Closer<IOException> closer = Closer.keeping(IOException.class);
        try {
            closer.closeEach(all, Device::close);
            closer.run(mm::close);
        } finally {
            synchronized (this) {
                closeDone = true;
                notifyAll();
            }
        }
        closer.throwIfFailed();
    }

    /** Options for {@link DirectMap#open()}. */
    public static final class Builder {
        private Path topologyFile;
        private PathPolicy policy = PathPolicy.CACHE;
        private double evictedPageNanos = 1_000;
        private boolean rangeEvents = io.directmap.fs.Policy.rangeEventsByDefault();

        private Builder() {}

        /**
         * A topology file (as {@code dmap --topology} takes): one rule a line, {@code bar NAME SIZE},
         * {@code no-p2p A B}, {@code atomics A B}; by default every device is a peer of every other.
         *
         * @param file the topology file, read at {@link #open()}
         * @return this builder
         */
        public Builder topology(Path file) {
            this.topologyFile = Objects.requireNonNull(file, "file");
            return this;
        }

        /**
         * The policy (as {@code dmap --policy}); {@link PathPolicy#CACHE} by default.
         *
         * @param policy what file systems decide by
         * @return this builder
         */
        public Builder policy(PathPolicy policy) {
            this.policy = Objects.requireNonNull(policy, "policy");
            return this;
        }

        /**
         * With {@link PathPolicy#LEARN}: what evicting one hot page of cache costs, in nanoseconds
         * (1000 by default, as {@code dmap --evicted-page-cost}).
         *
         * @param nanos the cost in nanoseconds
         * @return this builder
         * @throws IllegalArgumentException when nanos is negative, infinite or not a number
         */
        public Builder evictedPageCostNanos(double nanos) {
            if (!(nanos >= 0) || Double.isInfinite(nanos)) {
                throw new IllegalArgumentException("evicted page cost " + nanos + " ns; give a finite number of nanoseconds >= 0");
            }
            this.evictedPageNanos = nanos;
            return this;
        }

        /**
         * Whether file systems hear of other processes' changes with their range (fanotify
         * pre-content events; on by default where the kernel, the file system and root allow them,
         * unless the system property {@code directmap.rangeEvents} is false or the environment
         * variable {@code DMAP_RANGE_EVENTS} is off). With them, a write takes back only the
         * windows it overlaps; without them (or where they do not work), a read lease holds
         * writers back and every write takes back every window of the file.
         *
         * @param on false to hold writers back with read leases only
         * @return this builder
         */
        public Builder rangeEvents(boolean on) {
            this.rangeEvents = on;
            return this;
        }

        /**
         * Opens it.
         *
         * @return the entry point; closing it closes every device it made
         * @throws IOException a topology file that is missing or has a bad line (the message names the file and the line)
         */
        public DirectMap open() throws IOException {
            Topology t = topologyFile == null ? Topology.defaults() : Topology.load(topologyFile);
            return new DirectMap(Internals.addressSpace(t, policy, evictedPageNanos, rangeEvents), policy);
        }
    }

    @Override
    public String toString() {
        return "DirectMap (" + topology() + ", policy " + policy.name().toLowerCase(java.util.Locale.ROOT) + ")";
    }
}
