package io.directmap.sys;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Which processes have a file open (what fuser and lsof find), from /proc. Best effort: processes come and go. */
public final class Openers {
    private static final int O_ACCMODE = 3;

    private Openers() {}

    /** "pid 123 (dd)" for each other process with file open; writers only if asked. */
    public static List<String> of(Path file, boolean writersOnly) {
        List<String> out = new ArrayList<>();
        String target = file.toAbsolutePath().normalize().toString();
        long self = ProcessHandle.current().pid();
        try (DirectoryStream<Path> procs = Files.newDirectoryStream(Path.of("/proc"), p -> p.getFileName().toString().matches("\\d+"))) {
            for (Path proc : procs) {
                if (Long.parseLong(proc.getFileName().toString()) == self) continue;
                if (opens(proc, target, writersOnly)) {
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

    private static boolean opens(Path proc, String target, boolean writersOnly) {
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(proc.resolve("fd"))) {
            for (Path fd : fds) {
                try {
                    String link = Files.readSymbolicLink(fd).toString();
                    if (!link.equals(target) && !link.equals(target + " (deleted)")) continue;
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
