package io.directmap.coherence;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The torture on ext4 with range events switched off: read leases alone, every change takes back the whole file. */
class Ext4LeaseTortureTest extends TortureTest {
    @RegisterExtension
    static final ScratchFs FS = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @Override
    ScratchFs scratch() { return FS; }

    @Override
    boolean rangeEvents() { return false; }
}
