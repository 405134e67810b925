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
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class XfsContractTest extends FsContractTest {
    @RegisterExtension
    static final ScratchFs XFS = new ScratchFs(ScratchFilesystem.Type.XFS);

    @Override
    ScratchFs scratch() { return XFS; }

    @Test
    void reflinkedCopyIsSharedAndReadsDirect() throws IOException {
        Path original = scratch().file("original.bin");
        try {
            Workloads.write(original, 0, 4 * MiB, 40);
            Commands.run("cp", "--reflink=always", original.toString(), file.toString());
            Workloads.syncAndEvict(original);
            Workloads.syncAndEvict(file);
            try (OpenFile f = OpenFile.open(file)) {
                assertTrue(mm.fs().extents(f, 0, 4 * MiB).stream().allMatch(Extent::shared),
                        "the copy's extents are shared with the original");
            }
            List<Segment> segments = mapAndCheck();
            assertEquals(4 * MiB, direct(segments), "shared extents may be read directly: " + segments);
        } finally {
            Files.deleteIfExists(original);
        }
    }
}
