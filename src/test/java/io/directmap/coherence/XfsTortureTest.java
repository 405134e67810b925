package io.directmap.coherence;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import org.junit.jupiter.api.extension.RegisterExtension;

class XfsTortureTest extends TortureTest {
    @RegisterExtension
    static final ScratchFs FS = new ScratchFs(ScratchFilesystem.Type.XFS);

    @Override
    ScratchFs scratch() { return FS; }
}
