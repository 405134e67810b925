package io.directmap.sys;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Which processes have a file open (what fuser and lsof find), from /proc. Best effort: processes
 * come and go. A descriptor is matched by the inode it holds (st_dev, st_ino through the
 * /proc/PID/fd link), not by the name it was opened with: a hard link, a bind mount or another
 * mount namespace shows another name for the same file, and another file can have the name now.
 */
public final class Openers {
    private static final int O_ACCMODE = 3;

    private Openers() {}

    /** "pid 123 (dd)" for each other process with file open; writers only if asked. */
    public static List<String> of(Path file, boolean writersOnly) {
        List<String> out = new ArrayList<>();
        String target = file.toAbsolutePath().normalize().toString();
        Statx.Info id;
        try {
            id = Statx.of(file);
        } catch (SysException e) {
            id = null; // gone: only its name is left to match
        }
        long self = ProcessHandle.current().pid();
        try (DirectoryStream<Path> procs = Files.newDirectoryStream(Path.of("/proc"), p -> p.getFileName().toString().matches("\\d+"))) {
            for (Path proc : procs) {
                if (Long.parseLong(proc.getFileName().toString()) == self) continue;
                if (opens(proc, target, id, writersOnly)) {
                    String comm;
                    try {
                        comm = Files.readString(proc.resolve("comm")).trim();
                    } catch (IOException e) {
                        comm = "?";
                    }
                    out.add("pid " + proc.getFileName() + " (" + comm + ")");
                }
            }
        } catch (IOException e) {
            // /proc unreadable: say nothing rather than something wrong
        }
        return out;
    }

    /**
     * A path that opens the inode (devMajor:devMinor, inode) through a descriptor this process
     * holds (/proc/self/fd/N), or empty: how an unnamed file (O_TMPFILE, or unlinked) of our own,
     * such as a scratch file system's image, is reached again by its identity.
     */
    public static java.util.Optional<Path> heldBySelf(int devMajor, int devMinor, long inode) {
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path fd : fds) {
                try {
                    Statx.Info st = Statx.of(fd);
                    if (st.inode() == inode && st.devMajor() == devMajor && st.devMinor() == devMinor) return java.util.Optional.of(fd);
                } catch (SysException e) {
                    // closed meanwhile, or the directory stream's own descriptor
                }
            }
        } catch (IOException e) {
            // /proc unreadable
        }
        return java.util.Optional.empty();
    }

    /**
     * Who is probably changing file now: processes with it open for writing, and processes whose
     * command line names it (a writer blocked in open() by a lease has no descriptor yet).
     */
    public static List<String> suspects(Path file) {
        List<String> out = new ArrayList<>(of(file, true));
        String abs = file.toAbsolutePath().normalize().toString(), name = file.getFileName().toString();
        long self = ProcessHandle.current().pid();
        try (DirectoryStream<Path> procs = Files.newDirectoryStream(Path.of("/proc"), p -> p.getFileName().toString().matches("\\d+"))) {
            for (Path proc : procs) {
                if (Long.parseLong(proc.getFileName().toString()) == self) continue;
                try {
                    String cmd = new String(Files.readAllBytes(proc.resolve("cmdline")), java.nio.charset.StandardCharsets.UTF_8)
                            .replace('\0', ' ').trim();
                    if (!cmd.contains(abs) && !cmd.matches(".*(^|[ =/])" + java.util.regex.Pattern.quote(name) + "( |$).*")) continue;
                    String id = "pid " + proc.getFileName();
                    if (out.stream().noneMatch(s -> s.startsWith(id + " "))) {
                        out.add(id + " (" + (cmd.length() > 60 ? cmd.substring(0, 57) + "..." : cmd) + ")");
                    }
                } catch (IOException | RuntimeException e) {
                    // gone meanwhile
                }
            }
        } catch (IOException e) {
            // /proc unreadable
        }
        return out;
    }

    private static boolean sameFile(Path fd, String link, String target, Statx.Info id) {
        if (id == null) return link.equals(target) || link.equals(target + " (deleted)");
        // pipe:[..], socket:[..], anon_inode:..: never a file of ours, and not worth a statx.
        if (!link.startsWith("/")) return false;
        try {
            return Statx.of(fd).sameInode(id); // statx follows the /proc link to the open inode
        } catch (SysException e) {
            return false; // closed meanwhile
        }
    }

    private static boolean opens(Path proc, String target, Statx.Info id, boolean writersOnly) {
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(proc.resolve("fd"))) {
            for (Path fd : fds) {
                try {
                    String link = Files.readSymbolicLink(fd).toString();
                    if (!sameFile(fd, link, target, id)) continue;
                    if (!writersOnly) return true;
                    for (String line : Files.readAllLines(proc.resolve("fdinfo").resolve(fd.getFileName()))) {
                        if (line.startsWith("flags:") && (Integer.parseInt(line.substring(6).trim(), 8) & O_ACCMODE) != 0) return true;
                    }
                } catch (IOException | RuntimeException e) {
                    // the descriptor closed meanwhile
                }
            }
        } catch (IOException e) {
            // not ours to see, or gone
        }
        return false;
    }
}
