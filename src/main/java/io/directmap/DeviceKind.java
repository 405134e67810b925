package io.directmap;

/** The kinds of software device: they differ in memory, in how many DMA requests they keep in flight, and in atomics. */
public enum DeviceKind {
    /** 8 GiB of memory, 8 requests in flight, atomics. Named gpu0, gpu1, ... */
    GPU(io.directmap.device.Profile.GPU),
    /** 1 GiB of memory, 4 requests in flight, no atomics. Named nic0, nic1, ... */
    NIC(io.directmap.device.Profile.NIC),
    /** 2 GiB of memory, 4 requests in flight, atomics. Named fpga0, fpga1, ... */
    FPGA(io.directmap.device.Profile.FPGA);

    private final io.directmap.device.Profile profile;

    DeviceKind(io.directmap.device.Profile profile) { this.profile = profile; }

    io.directmap.device.Profile profile() { return profile; }

    /** {@return the prefix of its default names: "gpu", "nic", "fpga"} */
    public String prefix() { return profile.prefix(); }

    /** {@return the memory a device of this kind has unless told otherwise, in bytes} */
    public long defaultMemoryBytes() { return profile.memoryBytes(); }

    /** {@return how many DMA requests (and asynchronous reads) a device of this kind keeps in flight} */
    public int queueDepth() { return profile.queueDepth(); }
}
