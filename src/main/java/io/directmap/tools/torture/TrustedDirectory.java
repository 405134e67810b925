package io.directmap.tools.torture;

import io.directmap.mm.InvalidRequestException;
import io.directmap.sys.Process;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * A directory in which files that root tools reach by path cannot be swapped by another user, the
 * rule sudo and ssh apply to the files they trust: the directory and every directory above it is
 * owned by root or by the caller, and none can be written by group or others. An ancestor with the
 * sticky bit (/tmp) may be writable by all: there, only the owner of an entry may rename or remove
 * it, and the next component is checked for its owner. The directory itself may not: in it, the
 * torture's files are created, replaced by renames (defragmenters) and reached by path for minutes.
 */
public final class TrustedDirectory {
    private static final int GROUP_OR_OTHERS_WRITE = 0022, STICKY = 01000;

    private TrustedDirectory() {}

    /** The directory's real path, after checking it and each directory above it; refuses with why and what to do. */
    public static Path require(Path dir) throws IOException {
        Path real;
        try {
            real = dir.toRealPath();
        } catch (IOException e) {
            throw new InvalidRequestException(dir + ": cannot be resolved (" + e.getMessage() + "); give an existing directory");
        }
        if (!Files.isDirectory(real, LinkOption.NOFOLLOW_LINKS)) {
            throw new InvalidRequestException(dir + " is not a directory; give a directory on the file system to test");
        }
        int me = Process.effectiveUid();
        for (Path p = real; p != null; p = p.getParent()) {
            int uid = (int) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
            int mode = (int) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            String what = p.equals(real) ? dir.toString() : p + " (above " + dir + ")";
            if (uid != 0 && uid != me) {
                throw new InvalidRequestException(what + " is owned by uid " + uid + ", not by you (uid " + me
                        + ") or root: its owner could swap the files written there while tools reach them by path;"
                        + " use a directory of your own (mkdir -m 700 DIR)");
            }
            boolean othersWrite = (mode & GROUP_OR_OTHERS_WRITE) != 0;
            if (othersWrite && (p.equals(real) || (mode & STICKY) == 0)) {
                throw new InvalidRequestException(what + " can be written by group or others (mode "
                        + String.format("%04o", mode & 07777) + "): another user could swap the files written there while"
                        + " tools reach them by path; chmod go-w " + p + ", or use a directory of your own (mkdir -m 700 DIR)");
            }
        }
        return real;
    }
}
