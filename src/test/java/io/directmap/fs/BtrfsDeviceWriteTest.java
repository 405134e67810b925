package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.directmap.device.Binding;
import io.directmap.mm.Segment;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import java.util.List;
import org.junit.jupiter.api.extension.RegisterExtension;

/** btrfs checksums its data: direct WRITE is refused for every file, and the bytes land through the fallback. */
class BtrfsDeviceWriteTest extends DeviceWriteContractTest {
    @RegisterExtension
    static final ScratchFs BTRFS = new ScratchFs(ScratchFilesystem.Type.BTRFS);

    @Override
    ScratchFs scratch() { return BTRFS; }

    @Override
    boolean directWrites() { return false; }

    @Override
    void assertDirectWhereAllowed(Binding.Write w) {
        assertEquals(0, w.directBytes(), w.segments().toString());
        assertEquals(8 * MiB, bytesWith(w.segments(), FsReason.CHECKSUMMED), w.segments().toString());
    }

    @Override
    void assertRefusedWhereItMust(List<Segment> segments) {
        assertEquals(8 * MiB, bytesWith(segments, FsReason.CHECKSUMMED), segments.toString());
    }
}
