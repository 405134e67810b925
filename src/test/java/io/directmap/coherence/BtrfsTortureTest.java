package io.directmap.coherence;

import io.directmap.sys.ScratchFilesystem;
import io.directmap.testing.ScratchFs;
import org.junit.jupiter.api.extension.RegisterExtension;

class BtrfsTortureTest extends TortureTest {
    @RegisterExtension
    static final ScratchFs FS = new ScratchFs(ScratchFilesystem.Type.BTRFS);

    @Override
    ScratchFs scratch() { return FS; }
}
