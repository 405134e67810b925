package io.directmap.block;

import io.directmap.lang.Closer;
import io.directmap.mm.Refusal;
import io.directmap.pci.Aperture;
import io.directmap.pci.Topology;
import io.directmap.sys.Errno;
import io.directmap.sys.SysException;
import io.directmap.sys.SysfsBlock;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The block devices of this machine and their policy. It resolves stacking: a partition is tried
 * through its whole disk (start offset added) before itself, and what the disk refuses for its
 * hardware (a full aperture, no peer path, no atomics on it) the partition refuses too; a loop device answers with a
 * {@link BlockDecision.Redirect} to its backing file, which the file system maps again, so this
 * package never calls the file system; a device-mapper target is refused, its table unread.
 */
public final class BlockLayer implements AutoCloseable {
    private final Topology topology;
    private final Map<String, BlockDevice> devices = new ConcurrentHashMap<>();
    private final PeerMappings peers = new PeerMappings();
    private final BlockWatcher watcher = new BlockWatcher(this);
    /** Devices that went away (detached, number reused), until their descriptors are closed. */
    private final java.util.Set<BlockDevice> leaving = ConcurrentHashMap.newKeySet();

    public BlockLayer(Topology topology) {
        this.topology = topology;
    }

    public Topology topology() { return topology; }

    /**
     * The block device with this number, or empty if there is none (tmpfs, btrfs's anonymous st_dev).
     * What was learnt of a number is kept only while the number means the same device (disk
     * sequence number, loop backing inode): a reused number gets a new device, and the old one
     * goes away (the watcher takes its mappings back and closes it).
     */
    public Optional<BlockDevice> device(int major, int minor) {
        String key = major + ":" + minor;
        BlockDevice known = devices.get(key);
        if (known != null) {
            String replaced = known.replacedBy(SysfsBlock.diskSeq(major, minor));
            if (replaced == null) return Optional.of(known);
            known.markGoingAway(replaced);
            leaving.add(known);
            devices.remove(key, known);
            watcher.start();
        }
        Optional<SysfsBlock.Info> info = SysfsBlock.lookup(major, minor);
        if (info.isEmpty()) return Optional.empty();
        BlockDevice d = devices.computeIfAbsent(key, k -> new BlockDevice(info.get(),
                topology.endpoint(info.get().name(), Topology.Kind.BLOCK_DEVICE, info.get().pciSlot(),
                        Topology.DEFAULT_BLOCK_APERTURE)));
        // Watched from the start, so that a device we hold open lets go when it is detached.
        watcher.start();
        return Optional.of(d);
    }

    /** The device with this number if it was opened before (no sysfs lookup, no open). */
    public Optional<BlockDevice> known(int major, int minor) {
        return Optional.ofNullable(devices.get(major + ":" + minor));
    }

    /** The decision for [offset, offset+length) of dev: a loop device redirects, others decide here (a grant may be partial). */
    public BlockDecision decide(BlockDevice dev, long offset, long length, Access access) {
        // The backing inode and offset are the kernel's (LOOP_GET_STATUS64 on our descriptor), not
        // sysfs text; whoever follows the redirect opens the file and checks it is that inode.
        if (dev.backing().isPresent() && dev.goingAway().isEmpty()) {
            BlockDevice.Backing b = dev.backing().get();
            return new BlockDecision.Redirect(b.file(), b.status().offset() + offset, dev, offset);
        }
        return decideHere(dev, offset, length, access);
    }

    /**
     * The decision of dev itself, without following a loop device to its backing file. A grant may
     * cover less than asked (the aperture is nearly full); the caller asks again for the rest.
     */
    public BlockDecision decideHere(BlockDevice dev, long offset, long length, Access access) {
        if (dev.info().deviceMapper().isPresent()) {
            return refuse(BlockReason.STACKING_UNSUPPORTED, dev.name() + " is device-mapper target '"
                    + dev.info().deviceMapper().get() + "'; its table is not read");
        }
        String below = "";
        if (dev.info().partition().isPresent()) {
            SysfsBlock.Partition p = dev.info().partition().get();
            Optional<BlockDevice> disk = device(p.parentMajor(), p.parentMinor());
            if (disk.isPresent()) {
                BlockDecision whole = decideHere(disk.get(), p.startBytes() + offset, length, access);
                if (whole instanceof BlockDecision.Granted) return whole;
                // The BAR, the PCI path and its atomics are the disk's function's: a partition has
                // none of its own, so what the disk refuses for them is the answer (the partition's
                // own aperture would grant past the disk's BAR).
                if (whole instanceof BlockDecision.Refused r && HARDWARE.contains(r.refusal().reason())) return whole;
                if (whole instanceof BlockDecision.Refused r) below = "; through " + disk.get().name() + ": " + r.refusal().detail();
            }
        }
        if (dev.notThisDevice().isPresent()) {
            return refuse(BlockReason.IDENTITY_MISMATCH, dev.notThisDevice().get() + below);
        }
        if (dev.openFailure().isPresent()) {
            SysException e = dev.openFailure().get();
            String hint = e.errno() == Errno.EACCES
                    ? (io.directmap.sys.Process.isRoot()
                            ? "even root was refused: /dev is mounted nodev here, or a device cgroup or LSM denies it"
                            : "run as root or join the device's group")
                    : e.errno() == Errno.EPERM ? "the kernel protects this device (it is in use or locked down)"
                    : e.errno() == Errno.ENOENT ? "this mount namespace has no such node (a container?); DirectMap creates none" : "";
            return refuse(BlockReason.UNREADABLE, dev.devNode() + ": open O_DIRECT failed with " + e.shortReason()
                    + (hint.isEmpty() ? "" : "; " + hint) + below);
        }
        if (dev.goingAway().isPresent()) {
            return refuse(BlockReason.GOING_AWAY, dev.name() + ": " + dev.goingAway().get());
        }
        var g = dev.geometry();
        if (offset < 0 || length <= 0 || offset + length > roundUp(dev.sizeBytes(), g.logicalBlockSize())) {
            return refuse(BlockReason.BEYOND_DEVICE, dev.name() + " is " + dev.sizeBytes() + " bytes; asked for "
                    + offset + "+" + length);
        }
        if (offset % g.logicalBlockSize() != 0) {
            return refuse(BlockReason.MISALIGNED, "device offset " + offset + " is not a multiple of "
                    + dev.name() + "'s logical block size " + g.logicalBlockSize());
        }
        if (access.write() && g.readOnly()) {
            return refuse(BlockReason.READ_ONLY, dev.name() + " is read-only (BLKROGET)");
        }
        if (access.write()) {
            Optional<String> cannot = dev.openForWrite();
            if (cannot.isPresent()) {
                return refuse(BlockReason.NOT_WRITABLE, dev.devNode() + ": open O_RDWR O_DIRECT failed: " + cannot.get()
                        + "; the importer's writes go through the file system instead");
            }
        }
        io.directmap.pci.Reach p2p = topology.peerPath(access.importer(), dev.endpoint());
        if (!p2p.allowed()) {
            return refuse(BlockReason.NO_P2P_PATH, "no peer-to-peer path between " + access.importer().name()
                    + " and " + dev.name() + ": " + p2p.why() + " (" + topology.source() + ")");
        }
        io.directmap.pci.Reach atomics = access.atomic() ? topology.atomicPath(access.importer(), dev.endpoint()) : p2p;
        if (!atomics.allowed()) {
            return refuse(BlockReason.NO_ATOMICS_ON_PATH, "the path " + access.importer().name() + " - " + dev.name()
                    + " does not carry PCIe atomics: " + atomics.why() + " (" + topology.source() + ")");
        }
        // Grant what the aperture can hold, in a window of whole logical blocks; the caller asks again for the rest.
        Optional<Aperture.Window> w = dev.reserveUpTo(offset, length, g.logicalBlockSize());
        if (w.isEmpty() && dev.goingAway().isPresent()) {
            return refuse(BlockReason.GOING_AWAY, dev.name() + ": " + dev.goingAway().get());
        }
        String reclaimed = "";
        if (w.isEmpty() && topology.whenFull(dev.name()) == Aperture.WhenFull.RECLAIM) {
            Aperture.Reclaimed r = reclaim(dev, offset, length, g.logicalBlockSize());
            w = r.window();
            reclaimed = r.why();
        }
        if (w.isEmpty()) {
            dev.countRefusal();
            Aperture.Usage u = dev.aperture().usage();
            return refuse(BlockReason.APERTURE_EXHAUSTED, dev.name() + "'s aperture of " + u.sizeBytes() + " bytes has "
                    + u.freeBytes() + " free (largest free window " + u.largestFreeBytes() + " bytes, " + u.freeWindows()
                    + " free windows, " + u.windows() + " held); " + length + " asked from device offset " + offset
                    + " (windows are whole " + g.logicalBlockSize() + "-byte blocks); policy "
                    + topology.whenFull(dev.name()).code() + reclaimed + "; give it more with 'bar " + dev.name()
                    + " SIZE' in the topology file, or 'bar " + dev.name() + " SIZE reclaim' to take back the least recently used");
        }
        return new BlockDecision.Granted(dev, offset, Math.min(w.get().length(), length), dev.endpoint().busAddress(w.get().offset()));
    }

    /** Refusals about the disk's PCI function (its BAR, its path): a partition of it gets the same. */
    private static final java.util.Set<BlockReason> HARDWARE = java.util.EnumSet.of(
            BlockReason.APERTURE_EXHAUSTED, BlockReason.NO_P2P_PATH, BlockReason.NO_ATOMICS_ON_PATH);

    /**
     * The reclaim policy for a block device: its aperture takes back the least recently used
     * windows ({@link Aperture#reclaim}), each from the one mapping that holds it (found by the
     * window, not by its device range: another importer of the same range holds windows of its
     * own), through the same path as a shrink or a detach. A window's use is its grant: the block
     * device does not see the importer's DMAs (its engine reads through the descriptor).
     */
    private Aperture.Reclaimed reclaim(BlockDevice dev, long offset, long length, long unit) {
        return dev.aperture().reclaim("a mapping of device offset " + offset, victim ->
                peers.holderOf(dev, dev.endpoint().busAddress(victim.offset())).filter(e -> e.owner().reclaimable()).map(e -> new Aperture.Holder() {
                    @Override public String describe() { return "device " + victim.tag() + ".." + (victim.tag() + victim.length()); }
                    @Override public void takeBack(String detail) { e.owner().takeBack(e, BlockChange.APERTURE_RECLAIMED, detail); }
                }), () -> dev.reserveUpTo(offset, length, unit));
    }

    /** The reverse map: which device ranges are handed out, to whom. */
    public PeerMappings peers() { return peers; }

    /** Records that owner holds g, so the device can take it back; the watcher starts with the first one. */
    public PeerMappings.Entry track(BlockDecision.Granted g, PeerMappings.Owner owner) {
        PeerMappings.Entry e = peers.register(g, owner);
        watcher.start();
        return e;
    }

    /**
     * Looks at dev now (size, detach, backing file) and takes back the peer mappings a change
     * affects: past the new end when it shrank, all of them when it is going away. Returns the
     * number of owners asked. The watcher calls this every interval; a failed direct read calls
     * it at once.
     */
    public int check(BlockDevice dev) {
        return check(dev, SysfsBlock.state(dev.info().major(), dev.info().minor()));
    }

    /** {@link #check(BlockDevice)} with what sysfs says now given (tests give what the kernel cannot be made to say). */
    int check(BlockDevice dev, SysfsBlock.State now) {
        Takeback t;
        synchronized (dev) {
            SysfsBlock.State was = dev.lastState();
            // sysfs shows every change that matters (a new disk sequence number, backing file,
            // offset, size): ask the kernel through our descriptor only then.
            if (now.equals(was)) return 0;
            dev.lastState(now);
            t = takeback(dev, was, now, now.present() ? dev.replacedBy(now.diskSeq()) : null);
        }
        if (t == null) return 0;
        if (t.change() != BlockChange.SHRUNK) leaving.add(dev);
        // A device that is gone or replaced answers for its number no more: the next look-up makes
        // a new one. One being detached stays known, refusing, until its number is reused.
        if (t.change() == BlockChange.REMOVED || t.change() == BlockChange.BACKING_CHANGED) {
            devices.remove(dev.info().number(), dev);
        }
        return peers.invalidate(dev, t.start(), Long.MAX_VALUE, t.change(), t.detail());
    }

    /**
     * Gives back the descriptors of devices that went away and that nothing holds a grant on any
     * more, so a loop device being detached can go. The watcher calls this every interval.
     */
    void retireIdle() {
        for (BlockDevice d : List.copyOf(leaving)) {
            try {
                if (d.retireIfIdle(!peers.overlapping(d, 0, Long.MAX_VALUE).isEmpty())) leaving.remove(d);
            } catch (SysException e) {
                leaving.remove(d);
                System.getLogger("io.directmap").log(System.Logger.Level.WARNING, "closing " + d.devNode() + " failed: " + e.getMessage());
            }
        }
    }

    /** Every device to look at: those known by number, those with peer mappings, those going away. */
    List<BlockDevice> watched() {
        java.util.Set<BlockDevice> all = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        all.addAll(devices.values());
        all.addAll(peers.devices());
        all.addAll(leaving);
        return List.copyOf(all);
    }

    private record Takeback(long start, BlockChange change, String detail) {}

    private static Takeback takeback(BlockDevice dev, SysfsBlock.State was, SysfsBlock.State now, String replaced) {
        String name = dev.name();
        if (!now.present()) {
            dev.markGoingAway(name + " is gone from /sys/block");
            return new Takeback(0, BlockChange.REMOVED, dev.goingAway().get());
        }
        if (replaced != null) {
            dev.markGoingAway(replaced);
            return new Takeback(0, BlockChange.BACKING_CHANGED, replaced);
        }
        if (was.backingFile().isPresent() && now.backingFile().isEmpty()) {
            dev.markGoingAway(name + " was detached from " + was.backingFile().get());
            return new Takeback(0, BlockChange.REMOVED, dev.goingAway().get());
        }
        if (now.autoclear() && !was.autoclear()) {
            dev.markGoingAway(name + " is being detached (losetup -d): it goes when its last user closes it");
            return new Takeback(0, BlockChange.DETACHING, dev.goingAway().get());
        }
        if (dev.backing().isEmpty() && (!now.backingFile().equals(was.backingFile()) || now.loopOffset() != was.loopOffset())) {
            // Without our own descriptor to ask, sysfs is all there is; with one, a renamed backing
            // file (the same inode) changes nothing, and a new inode or window was caught above.
            dev.markGoingAway(name + " now reads " + now.backingFile().map(Path::toString).orElse("nothing")
                    + " at offset " + now.loopOffset() + " (was " + was.backingFile().map(Path::toString).orElse("nothing")
                    + " at " + was.loopOffset() + ")");
            return new Takeback(0, BlockChange.BACKING_CHANGED, dev.goingAway().get());
        }
        long old = dev.sizeBytes();
        dev.resized(now.sizeBytes());
        if (now.sizeBytes() < old) {
            return new Takeback(now.sizeBytes(), BlockChange.SHRUNK, name + " shrank from " + old + " to " + now.sizeBytes() + " bytes");
        }
        return null; // grown: every mapping handed out is still right
    }

    /** Gives back what a grant reserved (device_unmap, or an all-or-nothing request that failed elsewhere). */
    public void release(BlockDecision.Granted granted) {
        granted.device().release(granted.busAddress(), granted.length());
    }

    private static BlockDecision refuse(BlockReason reason, String detail) {
        return new BlockDecision.Refused(new Refusal(reason, detail));
    }

    private static long roundUp(long v, long to) {
        return (v + to - 1) / to * to;
    }

    @Override
    public void close() throws SysException {
        watcher.close();
        Closer<SysException> closer = Closer.keeping(SysException.class);
        closer.closeEach(watched(), BlockDevice::close);
        devices.clear();
        leaving.clear();
        closer.throwIfFailed();
    }

    public List<BlockDevice> known() {
        return List.copyOf(devices.values());
    }
}
