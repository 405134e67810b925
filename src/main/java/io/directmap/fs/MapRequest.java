package io.directmap.fs;

import io.directmap.pci.Topology.Endpoint;

/**
 * A device_map call as the file system sees it: who asks, for which bytes, with which flags.
 * allOrNothing is the proposal's contract (success or fall back entirely); without it the answer
 * is mixed, direct where possible.
 */
public record MapRequest(Endpoint importer, long start, long end, boolean write, boolean atomic, boolean pin,
                         boolean allOrNothing) {
    public MapRequest {
        if (start < 0 || end < start) throw new IllegalArgumentException("bad range " + start + ".." + end);
    }
}
