package io.directmap.coherence;

import io.directmap.tools.ScratchFilesystem;

class BtrfsWriteTortureTest extends WriteTortureTest {
    @Override ScratchFilesystem.Type type() { return ScratchFilesystem.Type.BTRFS; }

    @Override boolean directWrites() { return false; }
}
