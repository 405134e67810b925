package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import io.directmap.fs.ChangeWatch.Change;
import io.directmap.fs.ChangeWatchTest.Child;
import io.directmap.fs.ChangeWatchTest.Recorder;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * ext4, xfs and btrfs all report changes before they happen: a write and a punched hole by
 * another process reach the listener with the kernel's page-rounded ranges, on each.
 */
class ChangeWatchFilesystemsTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);
    @RegisterExtension
    static final ScratchFs XFS = new ScratchFs(ScratchFilesystem.Type.XFS);
    @RegisterExtension
    static final ScratchFs BTRFS = new ScratchFs(ScratchFilesystem.Type.BTRFS);

    static ScratchFs on(ScratchFilesystem.Type type) {
        return switch (type) {
            case EXT4 -> EXT4;
            case XFS -> XFS;
            case BTRFS -> BTRFS;
        };
    }

    @ParameterizedTest
    @EnumSource(ScratchFilesystem.Type.class)
    void writesAndPunchesAreHeardBeforeTheyHappen(ScratchFilesystem.Type type) throws Exception {
        Path p = on(type).file("changes-" + System.nanoTime());
        Files.write(p, new byte[64 * 1024]);
        Recorder r = new Recorder();
        try (ChangeWatch watch = ChangeWatch.open(); OpenFile f = OpenFile.open(p)) {
            assertInstanceOf(ChangeWatch.Watch.class, watch.watch(f, r));
            try (Child dd = new Child(List.of("dd", "if=/dev/zero", "of=" + p, "bs=100", "count=1", "seek=82", "conv=notrunc",
                    "status=none"))) {
                assertEquals(0, dd.await());
            }
            try (Child punch = new Child(List.of("fallocate", "-p", "-o", "16384", "-l", "8192", p.toString()))) {
                assertEquals(0, punch.await());
            }
            List<Change> changes = r.changes();
            assertEquals(2, changes.size(), changes.toString());
            ChangeWatchKindsTest.assertRange(Change.Kind.WRITE, 8192, 4096, changes.get(0));
            ChangeWatchKindsTest.assertRange(Change.Kind.PUNCH_HOLE, 16384, 8192, changes.get(1));
        }
    }
}
