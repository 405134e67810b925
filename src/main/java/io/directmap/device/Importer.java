package io.directmap.device;

import io.directmap.mm.MapFlag;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology.Endpoint;
import java.io.IOException;
import java.util.Set;
import java.util.function.LongConsumer;

/** A device that accesses mmapped files: step 2 of the proposal. */
public interface Importer extends AutoCloseable {
    /** How to take the file system's answer. */
    enum Mode {
        /** Direct where granted, page cache elsewhere. */
        MIXED,
        /** The proposal's contract: direct for the whole range, or fall back entirely. */
        ALL_OR_NOTHING
    }

    String name();

    /** Where the device sits on the bus. */
    Endpoint endpoint();

    /**
     * Accesses bytes [start, end) of the vma: calls device_map on it, programs its table with the
     * direct answers and the page-cache pages for the rest, and moves every byte into its memory.
     */
    DeviceAccess access(Vma vma, long start, long end, Set<MapFlag> flags, Mode mode, LongConsumer progress)
            throws IOException;

    default DeviceAccess access(Vma vma, long start, long end) throws IOException {
        return access(vma, start, end, Set.of(), Mode.MIXED, done -> { });
    }
}
