package io.directmap.block;

import io.directmap.pci.Topology.Endpoint;

/** What the importer will do with a mapping, as the block device sees it. */
public record Access(Endpoint importer, boolean write, boolean atomic) {}
