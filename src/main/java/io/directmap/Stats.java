package io.directmap;

import io.directmap.block.BlockDevice;
import io.directmap.device.BindingStats;
import io.directmap.device.ExportedMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.pci.Aperture;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * What a DirectMap is doing now, in the manner of GDS's gds_stats: for each block device it knows,
 * its BAR aperture (size, used, free, the largest free window, how many free windows: the
 * fragmentation) and what the aperture said no to or took back; the same for each software device
 * of this process that exports memory (its aperture, its exports, their live and revoked peer
 * mappings); the live mappings the file systems track and the peer mappings the block devices
 * handed out; the invalidations; and what every binding of this process counted (faults,
 * re-faults, let-goes, retried reads, bytes each way). A snapshot: the numbers move on as soon as
 * it is taken.
 *
 * @param devices       the block devices this DirectMap has opened, by name
 * @param exporters     the software devices of this process that export memory now, by name (the process's, not this DirectMap's alone)
 * @param liveMappings  device mappings the file systems track now (direct, fallback or both)
 * @param peerMappings  direct grants the block devices track now (the reverse map)
 * @param invalidations invalidations the file systems made (lease breaks, block-device changes, reclaims)
 * @param bindings      every binding of this process, live or gone (the counts are the process's, not this DirectMap's alone)
 */
public record Stats(List<DeviceStats> devices, List<ExporterStats> exporters, long liveMappings, long peerMappings,
                    long invalidations, BindingStats.Totals bindings) {
    /**
     * A snapshot; the lists are copied.
     *
     * @param devices       the block devices, by name
     * @param exporters     the exporting software devices, by name
     * @param liveMappings  device mappings the file systems track now
     * @param peerMappings  direct grants the block devices track now
     * @param invalidations invalidations the file systems made
     * @param bindings      the bindings' counts
     */
    public Stats {
        devices = List.copyOf(devices);
        exporters = List.copyOf(exporters);
    }

    /**
     * One block device's aperture.
     *
     * @param name             the device's name (loop0, nvme0n1)
     * @param apertureBytes    the aperture's size (the topology's bar rule, else the default)
     * @param usedBytes        bytes live direct mappings hold
     * @param freeBytes        bytes free
     * @param largestFreeBytes the largest free window: the largest direct mapping that fits now
     * @param freeWindows      how many free windows (fragmentation)
     * @param windows          how many windows are held
     * @param whenFull         "refuse" or "reclaim": what the aperture does when full (the topology's bar rule)
     * @param refusals         direct mappings refused for a full aperture (APERTURE_EXHAUSTED)
     * @param reclaims         windows taken back from their mappings to make room
     * @param peerMappings     the grants of the device that are tracked now
     */
    public record DeviceStats(String name, long apertureBytes, long usedBytes, long freeBytes, long largestFreeBytes,
                              int freeWindows, int windows, String whenFull, long refusals, long reclaims, int peerMappings) {
        /**
         * One device's numbers from its aperture as it is now.
         *
         * @param name         the device's name
         * @param aperture     its aperture
         * @param whenFull     what it does when full
         * @param refusals     mappings refused for a full aperture
         * @param reclaims     windows taken back to make room
         * @param peerMappings the grants tracked now
         * @return the numbers
         */
        public static DeviceStats of(String name, Aperture aperture, Aperture.WhenFull whenFull, long refusals, long reclaims,
                                     int peerMappings) {
            Aperture.Usage u = aperture.usage();
            return new DeviceStats(name, u.sizeBytes(), u.usedBytes(), u.freeBytes(), u.largestFreeBytes(), u.freeWindows(),
                    u.windows(), whenFull.code(), refusals, reclaims, peerMappings);
        }
    }

    /**
     * One software device that exports memory: its aperture (as a block device's) and its exports.
     *
     * @param aperture        its aperture's numbers; peerMappings counts the live peer mappings of its exports
     * @param exports         how many exports are live (not freed)
     * @param exportedBytes   their size together
     * @param revokedMappings peer mappings taken back from an importer that did not let go
     */
    public record ExporterStats(DeviceStats aperture, int exports, long exportedBytes, long revokedMappings) {
        /** {@return the device's name (gpu1)} */
        public String name() { return aperture.name(); }

        /** {@return the live peer mappings of its exports} */
        public int liveMappings() { return aperture.peerMappings(); }

        /**
         * The numbers of a software device now.
         *
         * @param d the device
         * @return its aperture and exports
         */
        public static ExporterStats of(SoftwareDevice d) {
            List<ExportedMemory> exports = d.exports();
            int live = 0;
            long bytes = 0, revoked = 0;
            for (ExportedMemory e : exports) {
                live += e.liveMappings();
                bytes += e.byteSize();
                revoked += e.revokedMappings();
            }
            return new ExporterStats(DeviceStats.of(d.name(), d.aperture(), d.apertureWhenFull(), d.apertureRefusals(),
                    d.apertureReclaims(), live), exports.size(), bytes, revoked);
        }
    }

    /**
     * A snapshot from the block devices' numbers (the caller's) with this process's exporters and
     * bindings added.
     *
     * @param devices       the block devices' numbers
     * @param liveMappings  device mappings the file systems track now
     * @param peerMappings  direct grants the block devices track now
     * @param invalidations invalidations the file systems made
     * @return the snapshot
     */
    public static Stats of(List<DeviceStats> devices, long liveMappings, long peerMappings, long invalidations) {
        List<ExporterStats> exporters = SoftwareDevice.exporting().stream().map(ExporterStats::of).toList();
        return new Stats(devices, exporters, liveMappings, peerMappings, invalidations, BindingStats.totals());
    }

    /**
     * The snapshot of a stack: what {@link DirectMap#stats()} gives. Public for the dmap command,
     * which holds the implementation's stack itself; a program calls {@link DirectMap#stats()}
     * (the module does not export the stack's type, so this is the one signature of the library
     * that names it).
     *
     * @param mm the stack
     * @return its block devices' apertures, with this process's exporters and bindings
     */
    @SuppressWarnings("exports")
    public static Stats of(FsStack mm) {
        List<DeviceStats> ds = new ArrayList<>();
        List<BlockDevice> known = new ArrayList<>(mm.blocks().known());
        known.sort(Comparator.comparing(BlockDevice::name));
        for (BlockDevice d : known) {
            ds.add(DeviceStats.of(d.name(), d.aperture(), mm.topology().whenFull(d.name()), d.apertureRefusals(), d.apertureReclaims(),
                    mm.blocks().peers().overlapping(d, 0, Long.MAX_VALUE).size()));
        }
        return of(ds, mm.fs().tracker().size(), mm.blocks().peers().size(), mm.fs().invalidations());
    }
}
