package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Binding;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class XfsDeviceWriteTest extends DeviceWriteContractTest {
    @RegisterExtension
    static final ScratchFs XFS = new ScratchFs(ScratchFilesystem.Type.XFS);

    @Override
    ScratchFs scratch() { return XFS; }

    @Test
    void reflinkedExtentsAreWrittenThroughTheFileSystemAndTheOriginalKeepsItsBytes() throws IOException {
        Path original = scratch().file("reflink-original.bin");
        try {
            Workloads.write(original, 0, 4 * MiB, 40);
            Commands.run("cp", "--reflink=always", original.toString(), file.toString());
            Workloads.syncAndEvict(original);
            Workloads.syncAndEvict(file);
            byte[] originalBytes = Workloads.read(original, 0, (int) (4 * MiB));
            try (Source src = source(4 * MiB, 41)) {
                Binding.Write w = write(0, src, true);
                assertEquals(4 * MiB, bytesWith(w.segments(), FsReason.SHARED_FOR_WRITE), w.segments().toString());
                assertEquals(0, w.directBytes());
                assertArrayEquals(src.bytes(), readBack(file, 0, (int) (4 * MiB)), "the copy holds what the device wrote");
            }
            assertArrayEquals(originalBytes, readBack(original, 0, (int) (4 * MiB)), "the original keeps its bytes");
            assertTrue(Files.size(original) == 4 * MiB);
        } finally {
            Files.deleteIfExists(original);
        }
    }
}
