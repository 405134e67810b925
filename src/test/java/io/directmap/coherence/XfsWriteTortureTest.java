package io.directmap.coherence;

import io.directmap.tools.ScratchFilesystem;

class XfsWriteTortureTest extends WriteTortureTest {
    @Override ScratchFilesystem.Type type() { return ScratchFilesystem.Type.XFS; }
}
