package io.directmap.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.DeviceAccess;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.sys.Statx;
import io.directmap.testing.Bytes;
import io.directmap.testing.LoopImages;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A loop number is a name: detached and attached again over another image it is another device.
 * What was learnt of loopN while it read image A (its descriptor, size, backing inode) must never
 * serve a mapping once it reads image B.
 */
class LoopNumberReuseTest {
    static final int LEN = 4 << 20;

    @BeforeAll
    static void root() {
        ScratchFs.requireRootFixtures(ScratchFilesystem.Type.EXT4);
    }

    @Test
    void aReusedLoopNumberIsANewDeviceAndReadsTheNewImage() throws Exception {
        try (LoopImages images = new LoopImages()) {
            Path srcA = Files.createDirectories(images.dir().resolve("srcA"));
            Path srcB = Files.createDirectories(images.dir().resolve("srcB"));
            Workloads.write(srcA.resolve("data.bin"), 0, LEN, 1);
            Workloads.write(srcB.resolve("data.bin"), 0, LEN, 2);
            Path imgA = images.ext4("a.img", srcA), imgB = images.ext4("b.img", srcB);

            String loop = images.attach(imgA);
            Path mnt = images.mount(loop, "mnt");
            Path file = mnt.resolve("data.bin");
            Statx.Info loopNode = Statx.of(Path.of(loop));
            int major = loopNode.rdevMajor(), minor = loopNode.rdevMinor();
            byte[] a = Workloads.read(file, 0, LEN);
            Workloads.syncAndEvict(file);
            // The image's pages are cached on the host, so its file system refuses and loopN itself is read.
            Workloads.cache(imgA, 0, Files.size(imgA));

            try (FsStack mm = FsStack.open(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology())) {
                BlockLayer blocks = mm.fs().blocks();
                BlockDevice first;
                try (Vma vma = mm.mmap(file); DeviceAccess access = gpu.access(vma, 0, LEN)) {
                    Bytes.assertDeviceHoldsFile(file, 0, access.memory());
                    first = blocks.known(major, minor).orElseThrow(() -> new AssertionError("loop device not looked up"));
                    assertEquals(Statx.of(imgA).inode(), first.backing().orElseThrow().status().backingInode(),
                            "the backing inode comes from LOOP_GET_STATUS64");
                    assertTrue(access.segments().stream().anyMatch(s -> s instanceof Segment.Direct d && d.peer() == first),
                            "read directly through " + loop + ": " + access.segments());

                    // losetup -d while the file system and this process hold loopN: the kernel waits
                    // for the last close. The mapping of A is taken back at once.
                    images.detach(loop);
                    long deadline = System.nanoTime() + 10_000_000_000L;
                    while (access.mapping().isLive() && System.nanoTime() < deadline) Thread.sleep(5);
                    assertFalse(access.mapping().isLive(), "the mapping of A was taken back when the detach began");
                    assertTrue(access.binding().invalidations() > 0, "its owner was told");
                }
                images.umount(mnt);
                assertTrue(LoopImages.awaitDetached(loop, 10_000),
                        loop + " still attached 10 s after losetup -d: DirectMap kept it open (" + first.goingAway() + ")");
                assertTrue(first.goingAway().isPresent(), "the first device is going away");

                try {
                    images.attachAt(loop, imgB);
                } catch (IOException e) {
                    Assumptions.abort("another process took " + loop + " between detach and attach: " + e.getMessage());
                }
                Path mntB = images.mount(loop, "mnt");
                assertEquals(loopNode.rdev(), Statx.of(file).dev(), "the same number " + loop + " again");

                try (Vma vma = mm.mmap(mntB.resolve("data.bin")); DeviceAccess access = gpu.access(vma, 0, LEN)) {
                    Bytes.assertDeviceHoldsFile(file, 0, access.memory());
                    byte[] got = access.memory().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
                    assertFalse(Arrays.equals(a, got), "image A's bytes were delivered for image B's file");
                    assertTrue(access.directBytes() > 0 || access.segments().stream().allMatch(s -> s instanceof Segment.Fallback),
                            access.segments().toString());
                    Optional<BlockDevice> now = blocks.known(major, minor);
                    assertTrue(now.isPresent(), "loopN was looked up again");
                    assertNotSame(first, now.get(), "a new device for the reused number, not the cached one");
                    assertNotEquals(first.diskSeq(), now.get().diskSeq(), "a new disk sequence number");
                    assertEquals(Statx.of(imgB).inode(), now.get().backing().orElseThrow().status().backingInode());
                    for (Segment s : access.segments()) {
                        if (s instanceof Segment.Direct d) assertNotSame(first, d.peer(), "nothing read through the old device");
                    }
                }
            }
        }
    }
}
