package io.directmap.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.sys.LoopDevice;
import io.directmap.testing.ScratchFs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What a scratch file system is made of, and that close leaves none of it. */
class ScratchFilesystemTest {
    @Test
    void anUnnamedImageOnAnAutoclearLoopDeviceAllGoneAfterClose() throws Exception {
        ScratchFs.requireRootFixtures(ScratchFilesystem.Type.EXT4);
        ScratchFilesystem fs = ScratchFilesystem.create(ScratchFilesystem.Type.EXT4, 64L << 20, false, List.of());
        LoopDevice loop = fs.loop();
        Path mountPoint = fs.mountPoint();
        try {
            Path sys = Path.of("/sys/block", loop.name(), "loop");
            assertTrue(loop.attached(), loop + " is attached");
            assertEquals("1", Files.readString(sys.resolve("autoclear")).trim(), "autoclear: the kernel detaches it at its last close");
            assertEquals("1", Files.readString(sys.resolve("dio")).trim(), "direct I/O to the image");
            assertTrue(Files.readString(sys.resolve("backing_file")).trim().endsWith("(deleted)"), "the image has no name");
            assertTrue(Files.readSymbolicLink(fs.image()).toString().endsWith("(deleted)"), "image() opens it all the same");
            assertEquals(64L << 20, Files.size(fs.image()));
            if (System.getenv(ScratchFilesystem.OUTER_NAMESPACE_ENV) != null) {
                assertTrue(fs.diesWithProcess(), "started through the launcher: the mount is private to this JVM");
            }
        } finally {
            fs.close();
        }
        assertFalse(loop.attached(), "close returns once the kernel has detached " + loop);
        assertFalse(Files.exists(mountPoint), "the mount point is removed");
        assertTrue(Files.readAllLines(Path.of("/proc/self/mountinfo")).stream().noneMatch(l -> l.contains(mountPoint.toString())));
        fs.close(); // a second close does nothing
    }
}
