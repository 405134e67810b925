package io.directmap.coherence;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The torture with range events switched off: read leases alone, every change takes back the whole
 * file. On btrfs, because there it also keeps relocation covered: btrfs refuses to defragment a
 * file under a pre-content mark (EINVAL), so with range events its defragment never moves blocks.
 */
class BtrfsLeaseTortureTest extends TortureTest {
    @RegisterExtension
    static final ScratchFs FS = new ScratchFs(ScratchFilesystem.Type.BTRFS);

    @Override
    ScratchFs scratch() { return FS; }

    @Override
    boolean rangeEvents() { return false; }

    @Override
    boolean relocationsMove() { return true; }
}
