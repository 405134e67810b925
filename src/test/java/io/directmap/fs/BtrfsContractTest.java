package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.mm.Segment;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Files;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class BtrfsContractTest extends FsContractTest {
    @RegisterExtension
    static final ScratchFs BTRFS = new ScratchFs(ScratchFilesystem.Type.BTRFS);

    @Override
    ScratchFs scratch() { return BTRFS; }

    @Test
    void compressedExtentsAreEncodedAndFallBack() throws IOException {
        Files.createFile(file);
        Commands.run("chattr", "+c", file.toString());
        Workloads.writeCompressible(file, 0, 4 * MiB, 50);
        Workloads.syncAndEvict(file);
        List<Segment> segments = mapAndCheck();
        assertTrue(bytesWith(segments, FsReason.ENCODED) >= 3 * MiB, "compressed extents fall back: " + segments);
    }

    @Test
    void logicalAddressesAreTranslatedThroughTheChunkTree() throws IOException {
        Workloads.write(file, 0, 2 * MiB, 51);
        Workloads.syncAndEvict(file);
        List<Segment> segments = mapAndCheck();
        assertEquals(2 * MiB, direct(segments), segments.toString());
        // The byte check in mapAndCheck is what proves the translation: btrfs logical != device offset.
    }
}
