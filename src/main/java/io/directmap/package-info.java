/**
 * DirectMap as a library: map a file into a device and read it, straight from the block device
 * where the file system and the block device agree, through the page cache where they do not, and
 * say for each range which way it went and why. Start here; everything a program needs is in this
 * package.
 *
 * <h2>Five minutes</h2>
 *
 * <pre>{@code
 * import io.directmap.*;
 * import java.nio.file.Path;
 *
 * try (DirectMap dm = DirectMap.open();                 // the machine and the policy
 *      Device gpu = dm.device(DeviceKind.GPU);          // gpu0: 8 GiB of device memory
 *      FileMapping m = gpu.map(Path.of("data.bin"));    // mmap + bind, nothing read yet
 *      Read r = m.read(0, m.length())) {                // device_map, DMA, read_retry
 *     System.out.println(r.directBytes() + " direct, " + r.fallbackBytes() + " through the page cache");
 *     for (Part p : r.parts()) System.out.println(p);  // Direct, or Fallback: who refused and why
 *     MemorySegment bytes = r.memory();                // the bytes, in device memory, read-only
 * }
 * }</pre>
 *
 * Run it with {@code --enable-native-access=ALL-UNNAMED} (on the class path). As root, ranges of
 * a file on a local disk go direct; as any other user the block device cannot be opened and every
 * byte comes through the page cache, with that reason in each {@link io.directmap.Part.Fallback}.
 *
 * <h2>The types</h2>
 *
 * <ul>
 * <li>{@link io.directmap.DirectMap}: the entry point; owns the topology (which devices are peers
 *     on the bus), the {@link io.directmap.PathPolicy}, and every device it made.</li>
 * <li>{@link io.directmap.Device}: a software device of a {@link io.directmap.DeviceKind}, with
 *     memory of its own; {@link io.directmap.Device#allocate} gives a {@link io.directmap.DeviceBuffer}.</li>
 * <li>{@link io.directmap.FileMapping}: a file (or a range, {@link io.directmap.MapOptions}) mapped
 *     into a device; reads follow the file as it changes (a read that overlapped a change is read
 *     again, never delivered stale).</li>
 * <li>{@link io.directmap.Read}: the bytes and how they came: {@link io.directmap.Part.Direct},
 *     {@link io.directmap.Part.Fallback} (who refused, the reason code, the summary, the detail).</li>
 * <li>{@link io.directmap.Pin}: a range pinned for a device ({@link io.directmap.Device#pin}), the
 *     proposal's DEVICE_MAP_FLAG_PIN: a dma_buf whose blocks stay in place (other writers get
 *     ETXTBSY) until it is closed; or refused, with the reason.</li>
 * <li>Many reads in flight: {@link io.directmap.FileMapping#readAsync} gives a
 *     {@code CompletableFuture<Read>}; a {@link io.directmap.ReadBatch} submits several together.
 *     At most the device's queue depth run at once.</li>
 * </ul>
 *
 * Everything that holds memory or a mapping is {@link java.lang.AutoCloseable}, and closing it
 * waits for the reads still writing into its memory. Bad input fails with an
 * {@link java.io.IOException} whose message names the file, the range and what to give instead.
 *
 * <p>The packages beneath ({@code mm}, {@code fs}, {@code block}, {@code device}) are the
 * proposal's layers, for driver writers: the two callbacks device_map and device_unmap, interval
 * notifiers, read_begin and read_retry.
 */
package io.directmap;
