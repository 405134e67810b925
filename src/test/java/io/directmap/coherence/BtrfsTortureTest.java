package io.directmap.coherence;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import org.junit.jupiter.api.extension.RegisterExtension;

class BtrfsTortureTest extends TortureTest {
    @RegisterExtension
    static final ScratchFs FS = new ScratchFs(ScratchFilesystem.Type.BTRFS);

    @Override
    ScratchFs scratch() { return FS; }
}
