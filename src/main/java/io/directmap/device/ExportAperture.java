package io.directmap.device;

/**
 * The BAR aperture through which a software device exposes the memory it exports: a fixed size
 * (the topology's {@code bar NAME SIZE}, else the device's memory size), of which each direct
 * peer mapping holds its length until it is unmapped or taken back.
 *
 * <p>A reservation only counts bytes, and the aperture exposes the memory linearly (the bus
 * address of memory offset x is the device's bus base plus x). Issue 11's aperture allocator
 * plugs in here: {@link #reserveUpTo} becomes the allocation of an aligned window, whose place in
 * the aperture becomes the bus address, and {@link #release} frees that window.
 */
final class ExportAperture {
    private final String device;
    private final long bytes;
    private long used;   // guarded by this

    ExportAperture(String device, long bytes) {
        this.device = device;
        this.bytes = bytes;
    }

    /** Reserves up to want bytes, in whole units; returns what was reserved (0 when full). */
    synchronized long reserveUpTo(long want, long unit) {
        long n = Math.min(want, (bytes - used) / unit * unit);
        if (n <= 0) return 0;
        used += n;
        return n;
    }

    synchronized void release(long n) {
        if (n > used) throw new IllegalStateException(device + "'s aperture releases " + n + " bytes but holds " + used);
        used -= n;
    }

    long size() { return bytes; }

    synchronized long used() { return used; }

    String device() { return device; }
}
