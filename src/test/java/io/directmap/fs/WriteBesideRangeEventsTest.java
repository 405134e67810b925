package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A file mapped for device READ with range events, and in the same process mapped for device WRITE
 * (a write lease, never range events): the read's descriptor keeps the write lease away, so the
 * write falls back to pwrite through its own descriptor, which raises a range event; the read
 * window it overlaps must be taken back (the WRITE vma's own shared writable mmap already counts
 * as a change of the whole file, MMAP_WRITE), and nothing may wait for itself. Checked byte for
 * byte against the file.
 */
class WriteBesideRangeEventsTest {
    static final long MiB = 1 << 20, SIZE = 16 * MiB, WINDOW = 8 * MiB;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @Test
    void aWritesFallbackPwriteTakesBackTheOverlappingReadWindowAndDoesNotDeadlock() throws Exception {
        Path file = EXT4.file("rw.bin");
        byte[] before = new byte[(int) SIZE];
        for (int i = 0; i < before.length; i++) before[i] = (byte) (i * 31 + 7);
        Files.write(file, before);
        try (FsStack mm = FsStack.open(Topology.defaults(), Policy.defaults().withRangeEvents(true));
             SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology())) {
            if (!mm.changeWatch().available()) {
                org.junit.jupiter.api.Assumptions.assumeTrue(System.getenv("CI") == null, "range events: " + mm.changeWatch().why());
                org.junit.jupiter.api.Assumptions.abort("range events unavailable here: " + mm.changeWatch().why());
            }
            try (Vma rv = mm.space().mmap(file);
                 Binding read = gpu.bind(rv, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED);
                 DeviceMemory.Buffer dst = gpu.allocate("dst", SIZE);
                 DeviceMemory.Buffer src = gpu.allocate("src", 4096)) {
                read.read(0, SIZE, dst.segment(), n -> { });
                assertArrayEquals(before, dst.segment().asSlice(0, SIZE).toArray(ValueLayout.JAVA_BYTE));
                assertEquals(2, read.liveMappings().size(), "both read windows mapped");

                MemorySegment s = src.segment().asSlice(0, 4096);
                s.fill((byte) 0x5a);
                long at = 3 * 4096;
                CompletableFuture<Binding.Write> write = CompletableFuture.supplyAsync(() -> {
                    try (Vma wv = mm.mmapForWrite(file);
                         Binding w = gpu.bind(wv, 0, 64 * 1024, 64 * 1024, Set.of(MapFlag.WRITE), MapMode.MIXED)) {
                        return w.write(at, s, false, n -> { });
                    } catch (java.io.IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                });
                Binding.Write w = write.get(30, TimeUnit.SECONDS);   // a deadlock shows as a timeout here
                byte[] after = Files.readAllBytes(file);
                byte[] expected = before.clone();
                Arrays.fill(expected, (int) at, (int) at + 4096, (byte) 0x5a);
                assertArrayEquals(expected, after, "the file holds the write");
                // The WRITE vma is a MAP_SHARED mapping of a descriptor open for writing: its mmap is a
                // possible change of the whole file (MMAP_WRITE), so every read window was taken back.
                for (io.directmap.mm.DeviceMapping m : read.liveMappings()) {
                    assertEquals(false, m.start() <= at && at < m.end(), "the read window over the write is taken back (" + w + ")");
                }
                read.read(0, SIZE, dst.segment(), n -> { });
                assertArrayEquals(expected, dst.segment().asSlice(0, SIZE).toArray(ValueLayout.JAVA_BYTE),
                        "the device reads the written bytes");
            }
        }
    }
}
