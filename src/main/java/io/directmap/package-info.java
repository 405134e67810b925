/**
 * DirectMap's library: map a file into a device and read it, learning what went direct and why the
 * rest did not. The entry point, the devices and the mappings a Java program needs live here; the
 * contract behind them, for driver writers, is in {@link io.directmap.mm} (device_map /
 * device_unmap and the invalidation notifiers) and {@link io.directmap.device} (importers).
 */
package io.directmap;
