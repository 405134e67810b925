/**
 * The device_map contract, for driver writers: the proposal's vm operations
 * ({@link io.directmap.mm.VmOperations#deviceMap device_map} and
 * {@link io.directmap.mm.VmOperations#deviceUnmap device_unmap}) that any mapping can implement, the
 * answer they give ({@link io.directmap.mm.DeviceMapping} of {@link io.directmap.mm.Segment}s, direct
 * or refused with a {@link io.directmap.mm.Refusal}), the {@link io.directmap.mm.Invalidation} an
 * exporter takes a mapping back with, and the interval notifiers an importer lets go through
 * ({@link io.directmap.mm.Vma#insertNotifier}, {@link io.directmap.mm.IntervalNotifier#readBegin},
 * {@link io.directmap.mm.IntervalNotifier#readRetry}). A file's vma gets its operations from its
 * file system; a device file's from its exporting driver.
 */
package io.directmap.mm;
