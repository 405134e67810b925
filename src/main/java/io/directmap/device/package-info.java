/**
 * Importers: the devices that map a vma through device_map and read through the mapping, with an
 * IOMMU-like table, device memory and a DMA engine. {@link io.directmap.device.Importer} is what the
 * contract needs of any device; {@link io.directmap.device.SoftwareDevice} is the built-in one (gpu,
 * nic, fpga).
 */
package io.directmap.device;
