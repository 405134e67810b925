package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.block.BlockReason;
import io.directmap.device.DeviceAccess;
import io.directmap.device.SoftwareDevice;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.sys.Fiemap;
import io.directmap.sys.FileHandle;
import io.directmap.testing.Bytes;
import io.directmap.testing.LoopImages;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;

/**
 * A loop device reads the inode it was given, whatever its name leads to now: when another file
 * is mounted over the image's name (as another mount namespace would see another file there),
 * following the loop to "its backing file" by name would read the other file's blocks. The name
 * is opened and checked against LOOP_GET_STATUS64's inode, and the loop device itself is read.
 */
class LoopBackingIdentityTest {
    static final int LEN = 4 << 20;

    @Test
    void aBackingFileReplacedUnderItsNameIsNotFollowed() throws IOException {
        // A loop device over a named image, as losetup makes one (the scratch file systems' images have no name).
        ScratchFs.requireRootFixtures(ScratchFilesystem.Type.EXT4);
        try (LoopImages images = new LoopImages()) {
            Path src = java.nio.file.Files.createDirectories(images.dir().resolve("src"));
            Workloads.write(src.resolve("replaced-backing.bin"), 0, LEN, 11);
            Path image = images.ext4("named.img", src), impostor = image.resolveSibling("impostor.img");
            String loop = images.attach(image);
            Path mnt = images.mount(loop, "mnt");
            Path file = mnt.resolve("replaced-backing.bin");
            Workloads.syncAndEvict(file);
            String routeBefore;
            try (FsStack mm = FsStack.open(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
                 Vma vma = mm.mmap(file); DeviceAccess a = gpu.access(vma, 0, LEN)) {
                Bytes.assertDeviceHoldsFile(file, 0, a.memory());
                routeBefore = a.segments().toString();
            }
            impostor(impostor, file, Files.size(image));
            boolean mounted = false;
            try {
                Commands.run("mount", "--bind", impostor.toString(), image.toString());
                mounted = true;
                Workloads.syncAndEvict(file);
                try (FsStack mm = FsStack.open(); SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
                     Vma vma = mm.mmap(file); DeviceAccess a = gpu.access(vma, 0, LEN)) {
                    Bytes.assertDeviceHoldsFile(file, 0, a.memory());
                    String loopName = Path.of(loop).getFileName().toString();
                    for (Segment s : a.segments()) {
                        switch (s) {
                            case Segment.Direct d -> {
                                assertEquals(loopName, d.peer().name(), "read through the loop device itself, never the impostor's blocks: "
                                        + a.segments() + " (before: " + routeBefore + ")");
                                assertTrue(d.route().contains(BlockReason.IDENTITY_MISMATCH.code()), d.route());
                            }
                            case Segment.Fallback f -> assertTrue(f.refusal().reason() != null, f.toString());
                        }
                    }
                }
            } finally {
                if (mounted) Commands.run("umount", image.toString());
                Files.deleteIfExists(impostor);
            }
        }
    }

    /** A file of the image's size at its name, with other bytes where file's blocks are. */
    private static void impostor(Path at, Path file, long size) throws IOException {
        try (FileChannel ch = FileChannel.open(at, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
             FileHandle h = FileHandle.openRead(file)) {
            ch.truncate(size);
            byte[] junk = new byte[1 << 16];
            java.util.Arrays.fill(junk, (byte) 0x5a);
            for (Fiemap.Extent x : Fiemap.extents(h, 0, LEN, Fiemap.FIEMAP_FLAG_SYNC)) {
                for (long off = 0; off < x.length(); off += junk.length) {
                    ch.write(java.nio.ByteBuffer.wrap(junk, 0, (int) Math.min(junk.length, x.length() - off)), x.physical() + off);
                }
            }
            ch.force(true);
        }
        try (FileHandle h = FileHandle.openRead(at)) {
            io.directmap.sys.PageCacheAdvice.dropCache(h, 0, size); // uncached, so its file system would grant it directly
        }
    }
}
