package io.directmap;

import io.directmap.block.BlockDevice;
import io.directmap.device.BindingStats;
import io.directmap.fs.FsStack;
import io.directmap.pci.Aperture;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * What a DirectMap is doing now, in the manner of GDS's gds_stats: for each block device it knows,
 * its BAR aperture (size, used, free, the largest free window, how many free windows: the
 * fragmentation) and what the aperture said no to or took back; the live mappings the file systems
 * track and the peer mappings the block devices handed out; the invalidations; and what every
 * binding of this process counted (faults, re-faults, let-goes, retried reads, bytes each way).
 * A snapshot: the numbers move on as soon as it is taken.
 *
 * @param devices       the block devices this DirectMap has opened, by name
 * @param liveMappings  device mappings the file systems track now (direct, fallback or both)
 * @param peerMappings  direct grants the block devices track now (the reverse map)
 * @param invalidations invalidations the file systems made (lease breaks, block-device changes, reclaims)
 * @param bindings      every binding of this process, live or gone (the counts are the process's, not this DirectMap's alone)
 */
public record Stats(List<DeviceStats> devices, long liveMappings, long peerMappings, long invalidations,
                    BindingStats.Totals bindings) {
    /**
     * A snapshot of these numbers; devices is copied.
     *
     * @param devices       the block devices this DirectMap has opened, by name
     * @param liveMappings  device mappings the file systems track now (direct, fallback or both)
     * @param peerMappings  direct grants the block devices track now (the reverse map)
     * @param invalidations invalidations the file systems made (lease breaks, block-device changes, reclaims)
     * @param bindings      every binding of this process, live or gone
     */
    public Stats {
        devices = List.copyOf(devices);
    }

    /**
     * One block device's aperture: the window of its BAR through which peers reach it, after
     * pci_p2pdma's model of a provider's BAR memory ({@link Aperture.Usage}).
     *
     * @param name             the block device's name (nvme0n1, loop3, ...)
     * @param apertureBytes    the size of its BAR aperture
     * @param usedBytes        bytes of the aperture granted to mappings now
     * @param freeBytes        bytes of the aperture free now
     * @param largestFreeBytes the largest free window: the longest range one grant can get in one piece
     * @param freeWindows      how many free windows the free bytes are split into (the fragmentation)
     * @param windows          windows granted to mappings now
     * @param whenFull         "refuse" or "reclaim": what the aperture does when full (the topology's bar rule)
     * @param refusals         direct mappings refused for a full aperture (APERTURE_EXHAUSTED)
     * @param reclaims         windows taken back from their mappings to make room
     * @param peerMappings     direct grants of this block device the reverse map tracks now
     */
    public record DeviceStats(String name, long apertureBytes, long usedBytes, long freeBytes, long largestFreeBytes,
                              int freeWindows, int windows, String whenFull, long refusals, long reclaims, int peerMappings) {}

    /**
     * The snapshot of a stack, for {@link DirectMap#stats()}. Package-private: its parameter is
     * the implementation's address space, which the module does not export (the dmap command,
     * which holds one, builds its snapshot in cli.StatsFiles).
     */
    static Stats of(FsStack mm) {
        List<DeviceStats> ds = new ArrayList<>();
        List<BlockDevice> known = new ArrayList<>(mm.blocks().known());
        known.sort(Comparator.comparing(BlockDevice::name));
        for (BlockDevice d : known) {
            Aperture.Usage u = d.aperture().usage();
            ds.add(new DeviceStats(d.name(), u.sizeBytes(), u.usedBytes(), u.freeBytes(), u.largestFreeBytes(), u.freeWindows(),
                    u.windows(), mm.topology().whenFull(d.name()).code(), d.apertureRefusals(), d.apertureReclaims(),
                    mm.blocks().peers().overlapping(d, 0, Long.MAX_VALUE).size()));
        }
        return new Stats(ds, mm.fs().tracker().size(), mm.blocks().peers().size(), mm.fs().invalidations(), BindingStats.totals());
    }
}
