package io.directmap.fs;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import org.junit.jupiter.api.extension.RegisterExtension;

class Ext4DeviceWriteTest extends DeviceWriteContractTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @Override
    ScratchFs scratch() { return EXT4; }
}
