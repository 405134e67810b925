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

    /**
     * The mount with this mount id (statx's stx_mnt_id, mountinfo's first field). Matching by
     * st_dev would miss btrfs, whose inodes carry a per-subvolume anonymous device number.
     */
    public static Optional<Mount> of(long mountId) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
                String[] f = line.split(" ");
                int dash = line.indexOf(" - ");
                if (f.length < 5 || dash < 0 || Long.parseLong(f[0]) != mountId) continue;
                String[] tail = line.substring(dash + 3).split(" ");
                String[] mm = f[2].split(":");
                return Optional.of(new Mount(Integer.parseInt(mm[0]), Integer.parseInt(mm[1]), Path.of(unescape(f[4])),
                        tail[0], tail.length > 1 ? unescape(tail[1]) : "", tail.length > 2 ? tail[2] : ""));
            }
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
        return Optional.empty();
    }

    private static String unescape(String s) {
        return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
    }
}
