package io.directmap.device;

/**
 * The kinds of built-in software device. They differ in memory, in how many DMA requests they
 * keep in flight, and in whether they can do atomics on mapped memory.
 */
public enum Profile {
    GPU("gpu", 8L << 30, 8, true),
    NIC("nic", 1L << 30, 4, false),
    FPGA("fpga", 2L << 30, 4, true);

    private final String prefix;
    private final long memoryBytes;
    private final int queueDepth;
    private final boolean atomics;

    Profile(String prefix, long memoryBytes, int queueDepth, boolean atomics) {
        this.prefix = prefix;
        this.memoryBytes = memoryBytes;
        this.queueDepth = queueDepth;
        this.atomics = atomics;
    }

    public String prefix() { return prefix; }
    public long memoryBytes() { return memoryBytes; }
    public int queueDepth() { return queueDepth; }
    public boolean atomics() { return atomics; }

    /** gpu0 -> GPU, nic1 -> NIC. */
    public static Profile ofDeviceName(String name) {
        for (Profile p : values()) {
            if (name.matches(p.prefix + "\\d+")) return p;
        }
        throw new IllegalArgumentException("no device kind for '" + name + "': use gpuN, nicN or fpgaN (gpu0, nic0, fpga0)");
    }
}
