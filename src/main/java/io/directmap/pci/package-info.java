/**
 * The bus the contract speaks of: where devices sit ({@link io.directmap.pci.Topology.Endpoint}),
 * which pairs can do peer-to-peer, which paths carry atomics, how much aperture each exposes. An
 * importer is an endpoint; a direct segment's bus address falls in its peer's aperture.
 */
package io.directmap.pci;
