package io.directmap.cli;

import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.PathLearner;
import io.directmap.fs.Policy;
import io.directmap.pci.Topology;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Options every command shares. */
final class Common {
    /** --policy: whether the file system follows --cached-pages or learns which path is faster. */
    enum PolicyChoice { FIXED, LEARN }

    @Option(names = "--json", description = "Print JSON for programs instead of tables.")
    boolean json;

    @Option(names = "--device", paramLabel = "NAME", defaultValue = "gpu0",
            description = "The software device that imports the mapping: gpuN, nicN or fpgaN (default: ${DEFAULT-VALUE}).")
    String device;

    @Mixin TopologyOption topology;

    @Option(names = "--cached-pages", paramLabel = "refuse|allow", defaultValue = "refuse",
            description = "What the file system does with ranges in the page cache (default: ${DEFAULT-VALUE}). Dirty pages are always refused.")
    Policy.CachedPages cachedPages;

    @Option(names = "--policy", paramLabel = "fixed|learn", defaultValue = "fixed",
            description = "fixed: --cached-pages decides; learn: measure both paths as they are used and send each range the faster way (default: ${DEFAULT-VALUE}).")
    PolicyChoice policy;

    @Mixin LearnerOption learner;

    @Option(names = "--no-range-events",
            description = "Hold other processes' writes back with a read lease only: every write takes back every mapping of the file"
                    + " (the default hears each change with its range through fanotify, where the kernel and file system allow it,"
                    + " and takes back only the windows it overlaps; DMAP_RANGE_EVENTS=off does the same as this flag).")
    boolean noRangeEvents;

    FsStack addressSpace() throws IOException {
        Policy p = switch (policy) {
            case FIXED -> new Policy(cachedPages);
            case LEARN -> new Policy(cachedPages, new PathLearner(learner.evictedPageCost));
        };
        return FsStack.open(topology.load(), noRangeEvents ? p.withRangeEvents(false) : p);
    }

    SoftwareDevice device(FsStack mm) {
        return SoftwareDevice.create(device, mm.topology());
    }

    /** --topology, shared with bench. */
    static final class TopologyOption {
        @Option(names = "--topology", paramLabel = "FILE",
                description = {"A topology file, one rule a line: 'bar NAME SIZE [refuse|reclaim]' (aperture, and what it does when full),"
                        + " 'no-p2p A B', 'atomics A B', 'host-bridge NAME [routes-p2p] [routes-atomics]',"
                        + " 'switch NAME under PARENT', 'place DEVICE under PARENT', 'acs BRIDGE redirect|direct',"
                        + " 'no-atomic-routing BRIDGE', 'completer DEVICE none|atomics32 atomics64 cas128'.",
                        "Default: the machine's PCI tree, with every device it does not place a peer of every other under one switch."
                        + " 'dmap topology --topology FILE' draws the tree a file gives and answers each pair."})
        Path file;

        /** The topology the file gives, or the default; a missing or bad file fails (exit 1) with the file and the line. */
        Topology load() throws IOException {
            return file == null ? Topology.defaults() : Topology.load(file);
        }
    }

    /** --evicted-page-cost, shared with bench (its mixed row learns). */
    static final class LearnerOption {
        @Option(names = "--evicted-page-cost", paramLabel = "NS", defaultValue = "1000",
                description = "With --policy learn (bench: its mixed row): what one evicted page of hot cache costs, in nanoseconds (default: ${DEFAULT-VALUE}).")
        double evictedPageCost;
    }
}
