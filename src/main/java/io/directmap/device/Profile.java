package io.directmap.device;

/**
 * The kinds of built-in software device. They differ in memory, in how many DMA requests they
 * keep in flight, and in whether they can do atomics on mapped memory.
 */
public enum Profile {
    /** A GPU: 8 GiB, 8 requests in flight, atomics. */
    GPU("gpu", 8L << 30, 8, true),
    /** A network card: 1 GiB, 4 requests in flight, no atomics. */
    NIC("nic", 1L << 30, 4, false),
    /** An FPGA: 2 GiB, 4 requests in flight, atomics. */
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

    /** {@return what its devices' names start with: "gpu"} */
    public String prefix() { return prefix; }

    /** {@return its memory, in bytes} */
    public long memoryBytes() { return memoryBytes; }

    /** {@return how many DMA requests it keeps in flight} */
    public int queueDepth() { return queueDepth; }

    /** {@return whether it can do atomics on mapped memory} */
    public boolean atomics() { return atomics; }

    /**
     * The profile a device name says: gpu0 is a GPU, nic1 a NIC.
     *
     * @param name gpuN, nicN or fpgaN
     * @return the profile
     * @throws IllegalArgumentException for any other name, with the names that work
     */
    public static Profile ofDeviceName(String name) {
        for (Profile p : values()) {
            if (name.matches(p.prefix + "\\d+")) return p;
        }
        throw new IllegalArgumentException("no device kind for '" + name + "': use gpuN, nicN or fpgaN (gpu0, nic0, fpga0)");
    }
}
