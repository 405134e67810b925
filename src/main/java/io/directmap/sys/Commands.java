package io.directmap.sys;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs the system's administration tools (losetup, mkfs, mount) and fails with what they said. */
public final class Commands {
    private Commands() {}

    /** Runs the command; returns its standard output; throws with its exit status and standard error. */
    public static String run(List<String> command) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(false);
        java.lang.Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new IOException("cannot run " + command.getFirst() + ": " + e.getMessage()
                    + "; install it (see .ci/run for the packages)", e);
        }
        try {
            p.getOutputStream().close();
            byte[] out = p.getInputStream().readAllBytes();
            byte[] err = p.getErrorStream().readAllBytes();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", command) + " did not finish in 120 s");
            }
            if (p.exitValue() != 0) {
                throw new IOException(String.join(" ", command) + " exited " + p.exitValue() + ": "
                        + new String(err, StandardCharsets.UTF_8).trim());
            }
            return new String(out, StandardCharsets.UTF_8);
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while running " + command.getFirst(), e);
        }
    }

    public static String run(String... command) throws IOException {
        return run(List.of(command));
    }

    /** True if the program is on PATH (or in /sbin, /usr/sbin, where mkfs tools live). */
    public static boolean available(String program) {
        for (String dir : (System.getenv().getOrDefault("PATH", "") + ":/sbin:/usr/sbin").split(":")) {
            if (!dir.isEmpty() && java.nio.file.Files.isExecutable(java.nio.file.Path.of(dir, program))) return true;
        }
        return false;
    }
}
