package io.directmap.cli;

import io.directmap.device.SoftwareDevice;
import io.directmap.fs.Policy;
import io.directmap.mm.AddressSpace;
import io.directmap.pci.Topology;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options every command shares. */
final class Common {
    @Option(names = "--json", description = "Print JSON for programs instead of tables.")
    boolean json;

    @Option(names = "--device", paramLabel = "NAME", defaultValue = "gpu0",
            description = "The software device that imports the mapping: gpuN, nicN or fpgaN (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--topology", paramLabel = "FILE",
            description = "A topology file (bar, no-p2p, atomics rules); default: every device a peer of every other.")
    Path topology;

    @Option(names = "--cached-pages", paramLabel = "refuse|allow", defaultValue = "refuse",
            description = "What the file system does with ranges in the page cache (default: ${DEFAULT-VALUE}). Dirty pages are always refused.")
    String cachedPages;

    @Option(names = "--policy", paramLabel = "fixed|learn", defaultValue = "fixed",
            description = "fixed: --cached-pages decides; learn: measure both paths as they are used and send each range the faster way (default: ${DEFAULT-VALUE}).")
    String policy;

    @Option(names = "--evicted-page-cost", paramLabel = "NS", defaultValue = "1000",
            description = "With --policy learn: what one evicted page of hot cache costs, in nanoseconds (default: ${DEFAULT-VALUE}).")
    double evictedPageCost;

    AddressSpace addressSpace() throws IOException {
        Policy.CachedPages c = switch (cachedPages) {
            case "refuse" -> Policy.CachedPages.REFUSE;
            case "allow" -> Policy.CachedPages.ALLOW;
            default -> throw new IllegalArgumentException("--cached-pages takes refuse or allow, not '" + cachedPages + "'");
        };
        Policy p = switch (policy) {
            case "fixed" -> new Policy(c);
            case "learn" -> new Policy(c, new io.directmap.fs.PathLearner(evictedPageCost));
            default -> throw new IllegalArgumentException("--policy takes fixed or learn, not '" + policy + "'");
        };
        return AddressSpace.create(topology == null ? Topology.defaults() : Topology.load(topology), p);
    }

    SoftwareDevice device(AddressSpace mm) {
        return SoftwareDevice.create(device, mm.topology());
    }
}
