package io.directmap.coherence;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The torture on xfs, with range events: xfs_fsr moves blocks with no range event, and the read_retry check catches it. */
class XfsTortureTest extends TortureTest {
    @RegisterExtension
    static final ScratchFs FS = new ScratchFs(ScratchFilesystem.Type.XFS);

    @Override
    ScratchFs scratch() { return FS; }

    @Override
    boolean relocationsMove() { return true; }
}
