package io.directmap.coherence;

import io.directmap.tools.ScratchFilesystem;

class Ext4WriteTortureTest extends WriteTortureTest {
    @Override ScratchFilesystem.Type type() { return ScratchFilesystem.Type.EXT4; }
}
