package io.directmap.fs;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.extension.RegisterExtension;

class Ext4PinTest extends PinContractTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @Override
    ScratchFs scratch() { return EXT4; }

    /** e4defrag opens the file for writing (O_RDWR) and swaps its blocks with EXT4_IOC_MOVE_EXT. */
    @Override
    List<String> defragment(Path file) { return List.of("e4defrag", file.toString()); }
}
