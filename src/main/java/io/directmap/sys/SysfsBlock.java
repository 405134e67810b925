package io.directmap.sys;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * /sys/dev/block/MAJ:MIN (Documentation/ABI/stable/sysfs-block): what a device number is —
 * a whole disk, a partition of one (start in 512-byte sectors), a loop device over a backing file,
 * a device-mapper target. These are names and text: what they say is checked against a descriptor
 * (fstat's st_rdev, BLKGETDISKSEQ, LOOP_GET_STATUS64) before anything is read through them.
 */
public final class SysfsBlock {
    private static final Path SYS_DEV_BLOCK = Path.of("/sys/dev/block");

    /** What sysfs knows of one block device. Optional parts are empty where they do not apply. */
    public record Info(String name, int major, int minor, Path devNode,
                       Optional<Partition> partition, Optional<Loop> loop, Optional<String> deviceMapper,
                       Optional<String> pciSlot) {
        public String number() { return major + ":" + minor; }
    }

    /** A partition starts startBytes into its parent disk. */
    public record Partition(String parentName, int parentMajor, int parentMinor, long startBytes) {}

    /** A loop device reads backingFile from offsetBytes; directIo is the loop's dio setting. */
    public record Loop(Path backingFile, long offsetBytes, boolean directIo) {}

    /**
     * What can change while a device is in use: whether it is still there, its disk sequence number
     * (-1 where the kernel has none; it grows on each attach, so a reused loop number shows a new
     * one), its size, and for a loop device its backing file, offset and autoclear flag (set by
     * losetup -d while the device is busy).
     */
    public record State(boolean present, long diskSeq, long sizeBytes, Optional<Path> backingFile, long loopOffset,
                        boolean autoclear) {
        public static final State GONE = new State(false, -1, 0, Optional.empty(), 0, false);
    }

    private SysfsBlock() {}

    /** The device's state now; {@link State#GONE} when sysfs no longer has it. */
    public static State state(int major, int minor) {
        try {
            Path dir = SYS_DEV_BLOCK.resolve(major + ":" + minor).toRealPath();
            long size = Long.parseLong(read(dir.resolve("size"))) * 512;
            long seq = diskSeq(dir);
            Path backing = dir.resolve("loop/backing_file");
            if (!Files.exists(backing)) return new State(true, seq, size, Optional.empty(), 0, false);
            return new State(true, seq, size, Optional.of(backingPath(read(backing))),
                    Long.parseLong(read(dir.resolve("loop/offset"))), read(dir.resolve("loop/autoclear")).equals("1"));
        } catch (IOException | RuntimeException e) {
            return State.GONE;
        }
    }

    /** Empty where the number is no block device (tmpfs, btrfs's anonymous devices, ...). */
    public static Optional<Info> lookup(int major, int minor) {
        Path link = SYS_DEV_BLOCK.resolve(major + ":" + minor);
        if (!Files.exists(link)) return Optional.empty();
        try {
            Path dir = link.toRealPath();
            String name = dir.getFileName().toString();
            Optional<Partition> partition = Optional.empty();
            if (Files.exists(dir.resolve("partition"))) {
                Path parent = dir.getParent();
                int[] pn = number(read(parent.resolve("dev")));
                partition = Optional.of(new Partition(parent.getFileName().toString(), pn[0], pn[1],
                        Long.parseLong(read(dir.resolve("start"))) * 512));
            }
            Optional<Loop> loop = Optional.empty();
            Path backing = dir.resolve("loop/backing_file");
            if (Files.exists(backing)) {
                Path dio = dir.resolve("loop/dio");
                loop = Optional.of(new Loop(backingPath(read(backing)), Long.parseLong(read(dir.resolve("loop/offset"))),
                        Files.exists(dio) && read(dio).equals("1")));
            }
            Optional<String> dm = Files.exists(dir.resolve("dm/name"))
                    ? Optional.of(read(dir.resolve("dm/name"))) : Optional.empty();
            Optional<String> pci = pciSlot(partition.isPresent() ? dir.getParent() : dir);
            return Optional.of(new Info(name, major, minor, Path.of("/dev", name), partition, loop, dm, pci));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /**
     * A PCI function's name as sysfs writes it: domain, bus, device, function. The domain is at
     * least 4 hex digits (%04x): a VMD controller's domains start at 0x10000, so its functions are
     * named with 5 (10000:e1:00.0).
     */
    private static final java.util.regex.Pattern PCI_FUNCTION =
            java.util.regex.Pattern.compile("[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]");

    /** The PCI address (0000:01:00.0) of the controller behind a disk, if it sits on PCI. */
    private static Optional<String> pciSlot(Path diskDir) {
        try {
            Path device = diskDir.resolve("device");
            if (!Files.exists(device)) return Optional.empty();
            return pciFunction(device.toRealPath());
        } catch (IOException e) {
            // no PCI path: a virtual device
        }
        return Optional.empty();
    }

    /**
     * The PCI function nearest the end of a resolved sysfs device path (the disk's controller, not
     * the bridges above it), or empty where no part of it names one.
     */
    static Optional<String> pciFunction(Path resolved) {
        for (Path p = resolved; p != null; p = p.getParent()) {
            String n = p.getFileName() == null ? "" : p.getFileName().toString();
            if (PCI_FUNCTION.matcher(n).matches()) return Optional.of(n);
        }
        return Optional.empty();
    }

    /** The disk sequence number sysfs shows for the number now, or -1 (no such device, or a kernel before 5.15). */
    public static long diskSeq(int major, int minor) {
        return diskSeq(SYS_DEV_BLOCK.resolve(major + ":" + minor));
    }

    /** /sys/dev/block/MAJ:MIN/diskseq (Linux 5.15), a partition's its disk's (as BLKGETDISKSEQ answers), or -1. */
    private static long diskSeq(Path dir) {
        try {
            Path real = dir.toRealPath();
            Path f = real.resolve("diskseq");
            if (!Files.exists(f) && Files.exists(real.resolve("partition"))) f = real.getParent().resolve("diskseq");
            return Long.parseLong(read(f));
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /** The backing file's name as d_path gives it, without the " (deleted)" the kernel adds to an unlinked one. */
    private static Path backingPath(String text) {
        return Path.of(text.endsWith(" (deleted)") ? text.substring(0, text.length() - " (deleted)".length()) : text);
    }

    private static int[] number(String majMin) {
        String[] p = majMin.split(":");
        return new int[] {Integer.parseInt(p[0]), Integer.parseInt(p[1])};
    }

    private static String read(Path p) throws IOException {
        return Files.readString(p).trim();
    }
}
