package io.directmap.fs;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.extension.RegisterExtension;

class XfsPinTest extends PinContractTest {
    @RegisterExtension
    static final ScratchFs XFS = new ScratchFs(ScratchFilesystem.Type.XFS);

    @Override
    ScratchFs scratch() { return XFS; }

    /** xfs_fsr opens the file for writing and swaps its extents with XFS_IOC_SWAPEXT. */
    @Override
    List<String> defragment(Path file) { return List.of("xfs_fsr", "-v", file.toString()); }
}
