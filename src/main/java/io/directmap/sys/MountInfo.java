package io.directmap.sys;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * /proc/self/mountinfo (proc(5)): the mount a device number belongs to, its type and its source.
 * btrfs gives its files an anonymous st_dev (0:NN); the mount source names the real device.
 */
public final class MountInfo {
    public record Mount(int major, int minor, Path mountPoint, String fsType, String source, String options) {}

    private MountInfo() {}

    /** The mount with this st_dev whose mount point holds file (the longest such mount point). */
    public static Optional<Mount> of(int major, int minor, Path file) {
        Mount best = null;
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
                String[] f = line.split(" ");
                int dash = line.indexOf(" - ");
                if (f.length < 5 || dash < 0) continue;
                String[] tail = line.substring(dash + 3).split(" ");
                String[] mm = f[2].split(":");
                if (Integer.parseInt(mm[0]) != major || Integer.parseInt(mm[1]) != minor) continue;
                Path point = Path.of(unescape(f[4]));
                if (!file.toAbsolutePath().startsWith(point)) continue;
                if (best == null || point.getNameCount() >= best.mountPoint().getNameCount()) {
                    best = new Mount(major, minor, point, tail[0], tail.length > 1 ? unescape(tail[1]) : "",
                            tail.length > 2 ? tail[2] : "");
                }
            }
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
        return Optional.ofNullable(best);
    }

    private static String unescape(String s) {
        return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
    }
}
