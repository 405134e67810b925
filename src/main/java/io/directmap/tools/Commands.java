package io.directmap.tools;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Runs the system's administration tools (losetup, mkfs, mount) and fails with what they said.
 *
 * <p>What runs here often runs as root, so nothing is taken from the caller's environment: a
 * program is an argument list (never a shell), found on the fixed {@link #PATH}, and run with
 * only {@code PATH} and {@code LC_ALL=C} in its environment (so its messages are the ones we
 * parse and quote). Its standard output and standard error are drained at the same time, each by
 * a thread of its own, so a child that fills one pipe while we wait on the other cannot hang us;
 * the timeout covers the whole run, and on timeout the child and every process it started are
 * killed, and the message says which command hung for how long.
 */
public final class Commands {
    /** Where programs are looked for, whatever PATH the caller had: the system's own directories. */
    public static final String PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    /** Long enough for mkfs of a few hundred MiB on a slow disk; a tool past it is taken as hung. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(120);
    private static final int MESSAGE_LIMIT = 4000;

    private Commands() {}

    /** Runs the command; returns its standard output; throws with its exit status and standard error. */
    public static String run(List<String> command) throws IOException {
        return run(command, null, DEFAULT_TIMEOUT);
    }

    public static String run(String... command) throws IOException {
        return run(List.of(command));
    }

    /** As {@link #run(List)}, with {@code stdin} written to the command's standard input (sfdisk's script). */
    public static String run(List<String> command, String stdin) throws IOException {
        return run(command, stdin, DEFAULT_TIMEOUT);
    }

    /**
     * Runs the command with {@code stdin} (or nothing) on its standard input; returns its standard
     * output once it exits 0. Throws when it cannot start, exits non-zero (with its standard
     * error), or is still running after {@code timeout} (it and its children are killed first).
     */
    public static String run(List<String> command, String stdin, Duration timeout) throws IOException {
        if (command.isEmpty()) throw new IllegalArgumentException("no command");
        List<String> argv = new ArrayList<>(command);
        String program = command.getFirst();
        argv.set(0, resolve(program).orElseThrow(() -> new IOException("cannot run " + program + ": no such executable"
                + (program.startsWith("/") ? "" : " in " + PATH) + "; install it (scripts/install-test-tools lists the packages)")).toString());
        ProcessBuilder pb = new ProcessBuilder(argv);
        Map<String, String> env = pb.environment();
        env.clear();
        env.put("PATH", PATH);
        env.put("LC_ALL", "C");
        long deadline = System.nanoTime() + timeout.toNanos();
        java.lang.Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new IOException("cannot run " + program + ": " + e.getMessage()
                    + "; install it (scripts/install-test-tools lists the packages)", e);
        }
        Drain out = new Drain(p.getInputStream(), program + " stdout");
        Drain err = new Drain(p.getErrorStream(), program + " stderr");
        try {
            feed(p.getOutputStream(), stdin, program);
            boolean exited = p.waitFor(remaining(deadline), TimeUnit.NANOSECONDS);
            // A child that exits while one of its own children keeps the pipe open has not finished either.
            if (!exited || !out.await(deadline) || !err.await(deadline)) {
                int killed = killTree(p);
                throw new IOException(describe(command) + " did not finish in " + seconds(timeout) + "; killed it"
                        + (killed > 0 ? " and the " + killed + (killed == 1 ? " process" : " processes") + " it started" : "")
                        + tail(err.text()) + "; look for what it waits on (a busy device, a prompt) and run it by hand");
            }
            if (p.exitValue() != 0) {
                throw new IOException(describe(command) + " exited " + p.exitValue() + ": " + tail(err.text()).strip());
            }
            return out.text();
        } catch (InterruptedException e) {
            killTree(p);
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while running " + describe(command) + "; killed it", e);
        }
    }

    /** The absolute path the program runs from: itself if absolute, else the first executable on {@link #PATH}. */
    public static Optional<Path> resolve(String program) {
        if (program.startsWith("/")) return Files.isExecutable(Path.of(program)) ? Optional.of(Path.of(program)) : Optional.empty();
        if (program.isEmpty() || program.contains("/")) return Optional.empty(); // a relative path would depend on the cwd
        for (String dir : PATH.split(":")) {
            Path candidate = Path.of(dir, program);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) return Optional.of(candidate);
        }
        return Optional.empty();
    }

    /** True if the program is on the fixed {@link #PATH} (what {@link #run} will find). */
    public static boolean available(String program) {
        return resolve(program).isPresent();
    }

    /** Writes stdin on a thread of its own: a child that does not read it must not stop us from timing it out. */
    private static void feed(OutputStream in, String stdin, String program) {
        Thread.ofPlatform().daemon().name("commands-" + program + " stdin").start(() -> {
            try (in) {
                if (stdin != null) in.write(stdin.getBytes(StandardCharsets.UTF_8));
            } catch (IOException e) {
                // The child closed its standard input (exited or was killed): its exit status says why.
            }
        });
    }

    /** Kills the process and its descendants (listed first: once it dies they are reparented); returns how many descendants. */
    private static int killTree(java.lang.Process p) {
        List<ProcessHandle> descendants = p.descendants().toList();
        p.destroyForcibly();
        descendants.forEach(ProcessHandle::destroyForcibly);
        try {
            p.waitFor(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return descendants.size();
    }

    private static long remaining(long deadline) {
        return Math.max(0, deadline - System.nanoTime());
    }

    private static String describe(List<String> command) {
        return String.join(" ", command);
    }

    private static String seconds(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
    }

    private static String tail(String s) {
        String t = s.strip();
        if (t.isEmpty()) return "";
        return t.length() <= MESSAGE_LIMIT ? "; it said: " + t : "; it said: ..." + t.substring(t.length() - MESSAGE_LIMIT);
    }

    /** Reads one of the child's pipes to its end on a thread of its own. */
    private static final class Drain {
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        private final Thread thread;

        Drain(InputStream in, String name) {
            thread = Thread.ofPlatform().daemon().name("commands-" + name).start(() -> {
                byte[] buf = new byte[8192];
                try (in) {
                    for (int n; (n = in.read(buf)) >= 0; ) {
                        synchronized (bytes) {
                            bytes.write(buf, 0, n);
                        }
                    }
                } catch (IOException e) {
                    // The pipe was closed under us (the child was killed): keep what came.
                }
            });
        }

        /** Waits for end of file until the deadline; false if the pipe is still open then. */
        boolean await(long deadline) throws InterruptedException {
            return thread.join(Duration.ofNanos(Math.max(1, remaining(deadline))));
        }

        String text() {
            synchronized (bytes) {
                return bytes.toString(StandardCharsets.UTF_8);
            }
        }
    }
}
