package io.directmap.block;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.mm.Refusal;
import io.directmap.pci.Topology;
import io.directmap.sys.Errno;
import io.directmap.sys.Statx;
import io.directmap.sys.SysfsBlock;
import io.directmap.testing.LoopImages;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A block device is known by its number, not by the name /dev/NAME: the node opened must be a
 * block device with that st_rdev, or nothing is read through it; a loop device's backing file and
 * window are the kernel's (LOOP_GET_STATUS64), not sysfs text.
 */
class DeviceIdentityTest {
    static final long SIZE = 8 << 20;
    static LoopImages images;
    static String loopA, loopB;
    static Path imageA;
    static Topology topology;
    static BlockLayer layer;

    @BeforeAll
    static void attach() throws Exception {
        ScratchFs.requireRootFixtures(ScratchFilesystem.Type.EXT4);
        images = new LoopImages();
        imageA = images.raw("a.img", SIZE, 1);
        loopA = images.attach(imageA);
        loopB = images.attach(images.raw("b.img", SIZE, 2));
        topology = Topology.defaults();
        layer = new BlockLayer(topology);
    }

    @AfterAll
    static void detach() throws Exception {
        if (layer != null) layer.close();
        if (images != null) images.close();
    }

    /** sysfs's facts for loopA, with the node to open replaced by node. */
    private static SysfsBlock.Info loopAAt(Path node) throws Exception {
        Statx.Info st = Statx.of(Path.of(loopA));
        SysfsBlock.Info real = SysfsBlock.lookup(st.rdevMajor(), st.rdevMinor()).orElseThrow();
        return new SysfsBlock.Info(real.name(), real.major(), real.minor(), node, real.partition(), real.loop(),
                real.deviceMapper(), real.pciSlot());
    }

    private static BlockDevice open(SysfsBlock.Info info) {
        return new BlockDevice(info, topology.endpoint(info.name() + "-test", Topology.Kind.BLOCK_DEVICE,
                Optional.empty(), Topology.DEFAULT_BLOCK_APERTURE));
    }

    private static Refusal refusal(BlockDevice dev) {
        Topology.Endpoint gpu = topology.endpoint("gpu-identity", Topology.Kind.IMPORTER, Optional.empty(), 1L << 30);
        var d = assertInstanceOf(BlockDecision.Refused.class, layer.decideHere(dev, 0, 4096, new Access(gpu, false, false)));
        return d.refusal();
    }

    private static Path node(String name, Path device) throws Exception {
        Statx.Info st = Statx.of(device);
        Path p = images.dir().resolve(name);
        Commands.run("mknod", p.toString(), "b", Integer.toString(st.rdevMajor()), Integer.toString(st.rdevMinor()));
        return p;
    }

    @Test
    void aNodeThatNamesAnotherDeviceIsNotRead() throws Exception {
        Path stale = node("stale-node", Path.of(loopB));
        try (BlockDevice dev = open(loopAAt(stale))) {
            String why = dev.notThisDevice().orElseThrow(() -> new AssertionError("the node for loopB was taken for loopA"));
            assertTrue(why.contains("is block device " + Statx.of(Path.of(loopB)).rdev()) && why.contains("another device"), why);
            assertThrows(IllegalStateException.class, dev::directHandle, "nothing to read through");
            try (var fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
                for (Path fd : fds) {
                    try {
                        assertNotEquals(stale, Files.readSymbolicLink(fd), "the descriptor of the wrong device was closed");
                    } catch (java.io.IOException gone) {
                        // closed meanwhile
                    }
                }
            }
            Refusal r = refusal(dev);
            assertEquals(BlockReason.IDENTITY_MISMATCH, r.reason(), r.toString());
            assertTrue(r.detail().contains("stale-node"), r.detail());
        }
    }

    @Test
    void aNodeThatIsNoBlockDeviceIsNotRead() throws Exception {
        Path plain = images.raw("not-a-node", 4096, 3);
        try (BlockDevice dev = open(loopAAt(plain))) {
            String why = dev.notThisDevice().orElseThrow();
            assertTrue(why.contains(plain.toString()) && why.contains("is a regular file"), why);
            assertEquals(BlockReason.IDENTITY_MISMATCH, refusal(dev).reason());
        }
    }

    @Test
    void aFifoWhereTheNodeShouldBeDoesNotBlock() throws Exception {
        Path fifo = images.dir().resolve("fifo-node");
        Commands.run("mkfifo", fifo.toString());
        BlockDevice dev = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> open(loopAAt(fifo)));
        try (dev) {
            assertTrue(dev.notThisDevice().isPresent() || dev.openFailure().isPresent(), "not opened as loopA");
            Refusal r = refusal(dev);
            assertTrue(r.reason() == BlockReason.IDENTITY_MISMATCH || r.reason() == BlockReason.UNREADABLE, r.toString());
        }
    }

    @Test
    void noNodeInThisNamespaceIsRefusedAndNothingIsMade() throws Exception {
        Path missing = images.dir().resolve("no-such-node");
        try (BlockDevice dev = open(loopAAt(missing))) {
            assertEquals(Errno.ENOENT, dev.openFailure().orElseThrow().errno());
            Refusal r = refusal(dev);
            assertEquals(BlockReason.UNREADABLE, r.reason());
            assertTrue(r.detail().contains("mount namespace") && r.detail().contains(missing.toString()), r.detail());
            assertTrue(Files.notExists(missing), "no node was created");
        }
    }

    @Test
    void theRightNodeOpensAndTheLoopBackingIsTheKernelsInode() throws Exception {
        try (BlockDevice dev = open(loopAAt(node("good-node", Path.of(loopA))))) {
            assertTrue(dev.notThisDevice().isEmpty() && dev.openFailure().isEmpty(), dev.notThisDevice() + " " + dev.openFailure());
            assertEquals(SIZE, dev.geometry().sizeBytes());
            BlockDevice.Backing b = dev.backing().orElseThrow();
            Statx.Info img = Statx.of(imageA);
            assertEquals(img.inode(), b.status().backingInode());
            assertEquals(img.dev(), b.status().backingDev(), "lo_device decoded to the image's st_dev");
            assertEquals(imageA, b.file());
            assertTrue(dev.diskSeq() > 0, "BLKGETDISKSEQ on this kernel: " + dev.diskSeq());
            assertEquals(SysfsBlock.diskSeq(dev.info().major(), dev.info().minor()), dev.diskSeq(), "the descriptor's is sysfs's");
        }
    }

    @Test
    void theLoopWindowComesFromTheKernel() throws Exception {
        Path img = images.raw("window.img", SIZE, 4);
        String loop = Commands.run("losetup", "--find", "--show", "--offset", "1048576", "--sizelimit", "4194304",
                img.toString()).trim();
        try {
            Statx.Info st = Statx.of(Path.of(loop));
            BlockDevice dev = layer.device(st.rdevMajor(), st.rdevMinor()).orElseThrow();
            BlockDevice.Backing b = dev.backing().orElseThrow();
            assertEquals(1 << 20, b.status().offset());
            assertEquals(4 << 20, b.status().sizeLimit());
            assertEquals(4 << 20, dev.sizeBytes());
            Topology.Endpoint gpu = topology.endpoint("gpu-identity", Topology.Kind.IMPORTER, Optional.empty(), 1L << 30);
            var rd = assertInstanceOf(BlockDecision.Redirect.class, layer.decide(dev, 8192, 4096, new Access(gpu, false, false)));
            assertEquals((1 << 20) + 8192, rd.backingOffset());
            assertEquals(img, rd.backingFile());
        } finally {
            images.detach(loop);
        }
    }

    @Test
    void aNewDiskSequenceNumberTakesTheOldDevicesMappingsBackAndGivesItBack() throws Exception {
        Statx.Info st = Statx.of(Path.of(loopA));
        try (BlockLayer blocks = new BlockLayer(topology)) {
            BlockDevice dev = blocks.device(st.rdevMajor(), st.rdevMinor()).orElseThrow();
            Topology.Endpoint gpu = topology.endpoint("gpu-identity", Topology.Kind.IMPORTER, Optional.empty(), 1L << 30);
            var g = assertInstanceOf(BlockDecision.Granted.class, blocks.decideHere(dev, 0, 1 << 20, new Access(gpu, false, false)));
            java.util.List<String> told = new java.util.concurrent.CopyOnWriteArrayList<>();
            PeerMappings.Entry[] entry = new PeerMappings.Entry[1];
            entry[0] = blocks.track(g, new PeerMappings.Owner() {
                @Override
                public void invalidate(BlockDevice d, long start, long end, BlockChange change, String detail) {
                    told.add(change.code() + ": " + detail);
                    blocks.peers().unregister(entry[0]); // what device_unmap does once the importer let go
                    blocks.release(g);
                }

                @Override
                public String describe() { return "test owner"; }
            });

            // What sysfs shows once loopA was detached and attached again: the same number, a new sequence.
            SysfsBlock.State real = SysfsBlock.state(st.rdevMajor(), st.rdevMinor());
            SysfsBlock.State reused = new SysfsBlock.State(true, real.diskSeq() + 1, real.sizeBytes(), real.backingFile(),
                    real.loopOffset(), real.autoclear());
            // A DMA that is reading through the descriptor when the device goes away keeps it open. It
            // begins before the check: once the device is going away, the block watcher's own pass
            // (every 20 ms) may give an idle descriptor back at any moment, so a read begun after the
            // check would race it.
            assertTrue(dev.beginDirectRead());
            assertEquals(1, blocks.check(dev, reused), "its one owner was asked");
            assertEquals(1, told.size(), told.toString());
            assertTrue(told.getFirst().startsWith("backing_changed: ") && told.getFirst().contains("disk sequence number"), told.toString());
            assertTrue(dev.goingAway().isPresent());
            assertTrue(blocks.known(st.rdevMajor(), st.rdevMinor()).isEmpty(), "the number no longer leads to the old device");
            Refusal r = refusal(dev);
            assertEquals(BlockReason.GOING_AWAY, r.reason(), "the old device grants nothing more: " + r);

            // The DMA still reading through the descriptor keeps it open, even with every grant given back.
            blocks.retireIdle();
            var buf = java.lang.foreign.Arena.ofAuto().allocate(4096, 4096);
            assertEquals(4096, dev.directHandle().pread(buf, 0), "still open while a DMA reads through it");
            dev.endDirectRead();
            blocks.retireIdle();
            assertFalse(dev.beginDirectRead(), "once given back, no DMA may start through it");
            var e = org.junit.jupiter.api.Assertions.assertThrows(io.directmap.sys.SysException.class,
                    () -> dev.directHandle().pread(buf, 0), "its descriptor was given back once idle");
            assertEquals(Errno.EBADF, e.errno());

            BlockDevice again = blocks.device(st.rdevMajor(), st.rdevMinor()).orElseThrow();
            assertTrue(again != dev && again.goingAway().isEmpty(), "a look-up makes a new device for the number");
        }
    }

    /**
     * A mapping's adjacent grants with contiguous windows are one segment, so one peer entry: the
     * reclaim finds it as the holder of each of its windows, not of its first only.
     */
    @Test
    void anEntryOfTwoMergedGrantsHoldsBothWindows() throws Exception {
        Statx.Info st = Statx.of(Path.of(loopA));
        try (BlockLayer blocks = new BlockLayer(topology)) {
            BlockDevice dev = blocks.device(st.rdevMajor(), st.rdevMinor()).orElseThrow();
            Topology.Endpoint gpu = topology.endpoint("gpu-identity", Topology.Kind.IMPORTER, Optional.empty(), 1L << 30);
            var a = assertInstanceOf(BlockDecision.Granted.class, blocks.decideHere(dev, 0, 256 << 10, new Access(gpu, false, false)));
            var b = assertInstanceOf(BlockDecision.Granted.class, blocks.decideHere(dev, 256 << 10, 256 << 10, new Access(gpu, false, false)));
            assertEquals(a.busAddress() + a.length(), b.busAddress(), "a fresh aperture gives the second window right after the first");
            var merged = new BlockDecision.Granted(dev, 0, a.length() + b.length(), a.busAddress());
            PeerMappings.Entry e = blocks.track(merged, new PeerMappings.Owner() {
                @Override
                public void invalidate(BlockDevice d, long start, long end, BlockChange change, String detail) { }

                @Override
                public String describe() { return "test owner"; }
            });
            try {
                assertEquals(Optional.of(e), blocks.peers().holderOf(dev, a.busAddress()));
                assertEquals(Optional.of(e), blocks.peers().holderOf(dev, b.busAddress()), "the second window's holder too");
                assertEquals(Optional.empty(), blocks.peers().holderOf(dev, b.busAddress() + b.length()));
            } finally {
                blocks.peers().unregister(e);
                blocks.release(a);
                blocks.release(b);
            }
            assertEquals(Optional.empty(), blocks.peers().holderOf(dev, a.busAddress()));
        }
    }
}
