package io.directmap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.lang.Xorshift;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The library's write: a file mapped for writing, device memory written into it, direct where allowed. */
class FileMappingWriteTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @Test
    void aDeviceWritesAColdFileDirectlyAndItReadsBackAsWritten() throws IOException {
        Path file = EXT4.file("facade-write.bin");
        long size = 4 << 20;
        try {
            Workloads.write(file, 0, size, 51);
            Workloads.syncAndEvict(file);
            byte[] expected = new byte[(int) size];
            Xorshift.seeded(52).fill(expected);
            try (DirectMap dm = DirectMap.open();
                 Device gpu = dm.device(DeviceKind.GPU);
                 DeviceBuffer buf = gpu.allocate(size);
                 FileMapping m = gpu.mapForWrite(file)) {
                MemorySegment.copy(MemorySegment.ofArray(expected), 0, buf.beginWrite(), 0, size);
                buf.endWrite();
                assertTrue(m.writable());
                Written w = m.write(0, buf, size, true);
                assertEquals(size, w.directBytes(), w.parts().toString());
                assertEquals(size, w.parts().stream().mapToLong(Part::length).sum(), "the parts cover the write");
                try (Read r = m.read(0, size)) {
                    assertArrayEquals(expected, r.memory().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), "the mapping reads its own write");
                }
            }
            assertArrayEquals(expected, Files.readAllBytes(file), "the file reads back as written");
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    void aMappingForReadingRefusesToWriteAndSaysHowToMapForWriting() throws IOException {
        Path file = EXT4.file("facade-read-only.bin");
        try {
            Workloads.write(file, 0, 1 << 20, 53);
            try (DirectMap dm = DirectMap.open();
                 Device gpu = dm.device(DeviceKind.GPU);
                 DeviceBuffer buf = gpu.allocate(1 << 20);
                 FileMapping m = gpu.map(file)) {
                IOException e = assertThrows(IOException.class, () -> m.write(0, buf, 1 << 20, false));
                assertTrue(e.getMessage().contains("mapForWrite"), e.getMessage());
            }
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
