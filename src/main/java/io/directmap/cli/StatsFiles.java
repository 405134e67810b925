package io.directmap.cli;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonParseException;
import com.google.gson.ToNumberPolicy;
import io.directmap.Stats;
import io.directmap.fs.FsStack;
import io.directmap.sys.Process;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.io.PrintWriter;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How {@code dmap stats} sees another process's DirectMap: a process that runs long ({@code dmap
 * watch}) publishes a small JSON snapshot of its {@link Stats} every second as
 * {@code /run/directmap/PID-N.json} (N counts the publishers of that process: 1 for the first),
 * mode 0600 in a directory of mode 0700, written whole and renamed into place so a reader never
 * sees half of one, and removed when it stops (at close, or by a shutdown hook on Ctrl-C).
 *
 * <p>A reader trusts a file only while its process is the one that wrote it: the start time the
 * file records must be the one /proc/PID/stat gives now. A file of a dead process (kill -9), or of
 * a pid now reused by another program, is stale: it is removed and named as such.
 * The directory can be moved with the system property {@value #DIR_PROPERTY} (tests).
 */
final class StatsFiles {
    static final String DIR_PROPERTY = "directmap.stats.dir";
    static final long INTERVAL_MS = 1000;
    private static final Pattern NAME = Pattern.compile("(\\d+)-(\\d+)\\.json");
    private static final AtomicInteger PUBLISHERS = new AtomicInteger();
    private static final Pattern TMP_NAME = Pattern.compile("\\.(\\d+)-[0-9a-z]+\\.tmp");
    private static final java.security.SecureRandom TMP_NAMES = new java.security.SecureRandom();
    private static final Gson GSON = new GsonBuilder().setObjectToNumberStrategy(ToNumberPolicy.LONG_OR_DOUBLE).create();

    private StatsFiles() {}

    static Path dir() {
        return Path.of(System.getProperty(DIR_PROPERTY, "/run/directmap"));
    }

    /** A snapshot a process published, and the file it came from. */
    record Found(Path file, long pid, Map<String, Object> snapshot) {}

    /** A file that was not used, and why (stale, removed; unreadable). */
    record Ignored(Path file, String why) {}

    record Listing(Path dir, List<Found> found, List<Ignored> ignored) {}

    /** Files a listing did not use, as dmap stats --json and dmap pins --json give them: {"file": ..., "why": ...} each. */
    static List<Object> ignoredJson(List<Ignored> ignored) {
        List<Object> out = new ArrayList<>();
        for (Ignored i : ignored) out.add(Map.of("file", i.file().toString(), "why", i.why()));
        return out;
    }

    /** Files a listing did not use, for a person: a line "ignored FILE: WHY" each. */
    static void printIgnored(PrintWriter out, List<Ignored> ignored) {
        for (Ignored i : ignored) out.printf("ignored %s: %s%n", i.file(), i.why());
    }

    /**
     * A number in a parsed snapshot or pin record as a long; 0 where the field is missing or not a
     * number. Short, as it stands in every cell of the dmap stats and dmap pins tables.
     */
    static long n(Object v) {
        return v instanceof Number x ? x.longValue() : 0;
    }

    /**
     * The start time of process pid in clock ticks since boot (field 22 of /proc/PID/stat, proc(5)),
     * or empty when there is no such process.
     */
    static OptionalLong startTime(long pid) {
        String stat;
        try {
            stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
        } catch (IOException e) {
            return OptionalLong.empty();
        }
        // The command name (field 2) is in parentheses and may hold spaces or ')': count from the last ')'.
        String[] after = stat.substring(stat.lastIndexOf(')') + 2).trim().split(" ");
        return OptionalLong.of(Long.parseLong(after[22 - 3]));
    }

    /** The snapshot as it is written: the stats with who wrote it and when. */
    static Map<String, Object> snapshot(Stats s, long pid, long startTime, String command) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("pid", pid);
        m.put("start_time", startTime);
        m.put("command", command);
        m.put("updated_ms", System.currentTimeMillis());
        m.put("interval_ms", INTERVAL_MS);
        List<Object> devices = new ArrayList<>();
        for (Stats.DeviceStats d : s.devices()) devices.add(aperture(d));
        m.put("devices", devices);
        List<Object> exporters = new ArrayList<>();
        for (Stats.ExporterStats e : s.exporters()) {
            Map<String, Object> j = aperture(e.aperture());
            j.remove("peer_mappings");
            j.put("exports", e.exports());
            j.put("exported_bytes", e.exportedBytes());
            j.put("live_mappings", e.liveMappings());
            j.put("revoked_mappings", e.revokedMappings());
            exporters.add(j);
        }
        m.put("exporters", exporters);
        m.put("mappings", s.liveMappings());
        m.put("peer_mappings", s.peerMappings());
        m.put("invalidations", s.invalidations());
        var b = s.bindings();
        Map<String, Object> j = new LinkedHashMap<>();
        j.put("faults", b.faults());
        j.put("refaults", b.refaults());
        j.put("invalidations", b.invalidations());
        j.put("retries", b.retries());
        j.put("reads", b.reads());
        j.put("incoherent_reads", b.incoherentReads());
        j.put("direct_bytes", b.directBytes());
        j.put("fallback_bytes", b.fallbackBytes());
        m.put("bindings", j);
        return m;
    }

    /** One device's aperture as the snapshot writes it. */
    private static Map<String, Object> aperture(Stats.DeviceStats d) {
        Map<String, Object> j = new LinkedHashMap<>();
        j.put("name", d.name());
        j.put("aperture_bytes", d.apertureBytes());
        j.put("used_bytes", d.usedBytes());
        j.put("free_bytes", d.freeBytes());
        j.put("largest_free_bytes", d.largestFreeBytes());
        j.put("free_windows", d.freeWindows());
        j.put("windows", d.windows());
        j.put("when_full", d.whenFull());
        j.put("refusals", d.refusals());
        j.put("reclaims", d.reclaims());
        j.put("peer_mappings", d.peerMappings());
        return j;
    }

    /** What a publisher writes: the snapshot of this process now, with who wrote it and when. */
    @FunctionalInterface
    interface Snapshots {
        Map<String, Object> snapshot(long pid, long startTime, String command);
    }

    /**
     * Publishes snapshots (of a stack's stats, or of this process's pins) every second until
     * closed; the file goes at close and at exit.
     */
    static final class Publisher implements AutoCloseable {
        private final Snapshots snapshots;
        private final Path dir, file;
        private final long pid, startTime;
        private final String command;
        private final ScheduledExecutorService timer;
        private final Thread atExit;
        private final PrintWriter err;
        private volatile boolean failedOnce;
        private boolean stopped;                 // guarded by this: removed, never written again

        private Publisher(Snapshots snapshots, Path dir, String command, PrintWriter err) {
            this.snapshots = snapshots;
            this.dir = dir;
            this.pid = ProcessHandle.current().pid();
            this.startTime = startTime(pid).orElse(-1);
            this.file = dir.resolve(pid + "-" + PUBLISHERS.incrementAndGet() + ".json");
            this.command = command;
            this.err = err;
            this.timer = Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().daemon().name("dmap-stats").unstarted(r));
            this.atExit = new Thread(this::remove, "dmap-stats-remove");
        }

        /**
         * Starts publishing mm's stats for command ("dmap watch FILE"); when the directory cannot be
         * made or written (not root), says so once on err and publishes nothing.
         */
        static Publisher start(FsStack mm, String command, PrintWriter err) {
            return start((pid, startTime, cmd) -> snapshot(Stats.of(mm), pid, startTime, cmd), dir(), command, "stats", "dmap stats", err);
        }

        /**
         * Starts publishing what snapshots gives into dir for command; when the directory cannot be
         * made or written (not root), says once on err that the reader (what, by whom) will not see
         * this process, and publishes nothing.
         */
        static Publisher start(Snapshots snapshots, Path dir, String command, String what, String reader, PrintWriter err) {
            Publisher p = new Publisher(snapshots, dir, command, err);
            try {
                Files.createDirectories(p.dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
                // An existing directory is taken as it is: one someone else owns or can write to (or
                // a link to one) could have this process, root perhaps, write where they choose.
                checkTrusted(p.dir, "no " + what + " are written there");
                p.write();
            } catch (IOException | RuntimeException e) {
                err.println("dmap: " + what + " are not published (" + reader + " will not see this process): " + p.dir + ": " + e
                        + (Process.isRoot() ? "" : "; run as root to publish them"));
                p.timer.shutdown();
                return p;
            }
            Runtime.getRuntime().addShutdownHook(p.atExit);
            p.timer.scheduleWithFixedDelay(p::writeQuietly, INTERVAL_MS, INTERVAL_MS, TimeUnit.MILLISECONDS);
            return p;
        }

        Path file() { return file; }

        /** Writes a snapshot now (what it shows changed), not waiting for the next second. */
        void refresh() {
            writeQuietly();
        }

        private void writeQuietly() {
            try {
                write();
            } catch (IOException | RuntimeException e) {
                if (!failedOnce) err.println("dmap: publishing stats to " + file + " failed: " + e + " (tried again every second)");
                failedOnce = true;
            }
        }

        private synchronized void write() throws IOException {
            if (stopped) return;
            String json = Json.write(snapshots.snapshot(pid, startTime, command));
            Path tmp = dir.resolve("." + pid + "-" + Long.toUnsignedString(TMP_NAMES.nextLong(), 36) + ".tmp");
            try {
                // Written through the descriptor that created it (O_CREAT|O_EXCL, no link followed),
                // never by opening the name again: a link put there meanwhile is not written through.
                try (SeekableByteChannel ch = Files.newByteChannel(tmp, Set.of(StandardOpenOption.CREATE_NEW,
                        StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS),
                        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
                    ByteBuffer b = ByteBuffer.wrap(json.getBytes(StandardCharsets.UTF_8));
                    while (b.hasRemaining()) ch.write(b);
                }
                try {
                    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                Files.deleteIfExists(tmp);
            }
        }

        private synchronized void remove() {
            stopped = true;
            try {
                Files.deleteIfExists(file);
            } catch (IOException e) {
                err.println("dmap: removing " + file + " failed: " + e + "; dmap stats removes it once this process is gone");
            }
        }

        @Override
        public void close() {
            timer.shutdownNow();
            try {
                timer.awaitTermination(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            remove();
            try {
                Runtime.getRuntime().removeShutdownHook(atExit);
            } catch (IllegalStateException | IllegalArgumentException e) {
                // Shutting down already (the hook removes the file), or never added (nothing was published).
            }
        }
    }

    /**
     * The snapshots in dir (only pid's when pid is not null); stale files (their process gone, or
     * their pid another program's now) are removed and listed as ignored.
     */
    static Listing list(Path dir, Long pid) throws IOException {
        List<Found> found = new ArrayList<>();
        List<Ignored> ignored = new ArrayList<>();
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS) && !Files.isSymbolicLink(dir)) return new Listing(dir, found, ignored);
        checkTrusted(dir, "its stats files are not read");
        removeOrphanTemps(dir, ignored);
        List<Path> files = new ArrayList<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, "*.json")) {
            s.forEach(files::add);
        }
        files.sort(Comparator.comparing(Path::toString));
        for (Path f : files) {
            Matcher m = NAME.matcher(f.getFileName().toString());
            if (!m.matches()) {
                ignored.add(new Ignored(f, "not a stats file (its name is not PID-N.json)"));
                continue;
            }
            long filePid = Long.parseLong(m.group(1));
            if (pid != null && filePid != pid) continue;
            Map<String, Object> snap;
            try {
                @SuppressWarnings("unchecked")
                Map<String, Object> read = GSON.fromJson(Files.readString(f), Map.class);
                snap = read;
            } catch (IOException | JsonParseException e) {
                if (Files.notExists(f)) continue;   // removed as its process stopped, between list and read
                ignored.add(new Ignored(f, "unreadable: " + e.getMessage()));
                continue;
            }
            if (snap == null || !(snap.get("start_time") instanceof Long recorded)) {
                ignored.add(new Ignored(f, "unreadable: no start_time"));
                continue;
            }
            OptionalLong now = startTime(filePid);
            String stale = now.isEmpty() ? "process " + filePid + " is gone"
                    : now.getAsLong() != recorded ? "pid " + filePid + " is another program now (started at tick " + now.getAsLong()
                    + ", the file's at " + recorded + ")" : null;
            if (stale != null) {
                Files.deleteIfExists(f);
                ignored.add(new Ignored(f, stale + "; the stale file was removed"));
                continue;
            }
            found.add(new Found(f, filePid, snap));
        }
        return new Listing(dir, found, ignored);
    }

    /**
     * Temporary files a publisher killed between writing and renaming left behind (.PID-X.tmp):
     * removed, and listed as ignored, once their process is gone. A live process's are its own.
     */
    private static void removeOrphanTemps(Path dir, List<Ignored> ignored) throws IOException {
        List<Path> temps = new ArrayList<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, ".*.tmp")) {
            s.forEach(temps::add);
        }
        temps.sort(Comparator.comparing(Path::toString));
        for (Path t : temps) {
            Matcher m = TMP_NAME.matcher(t.getFileName().toString());
            if (!m.matches()) continue;
            long tmpPid;
            try {
                tmpPid = Long.parseLong(m.group(1));
            } catch (NumberFormatException e) {
                continue;
            }
            if (startTime(tmpPid).isPresent()) continue;
            if (Files.deleteIfExists(t)) {
                ignored.add(new Ignored(t, "process " + tmpPid + " is gone (killed while publishing); its temporary file was removed"));
            }
        }
    }

    /**
     * A directory anyone but its owner (this user) can write to, or a link to one, could hand a root
     * reader any file or have a root writer write anywhere: refused, with what to do.
     *
     * @param consequence what is not done there, for the message ("its stats files are not read")
     */
    static void checkTrusted(Path dir, String consequence) throws IOException {
        boolean link = Files.isSymbolicLink(dir);
        int owner = (Integer) Files.getAttribute(dir, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        Set<PosixFilePermission> mode = Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS);
        String problem = untrusted(dir, link, owner, mode, Process.effectiveUid(), consequence);
        if (problem != null) throw new IOException(problem);
    }

    /** Why dir, as described, is not trusted by user euid, with what to do; null where it is. */
    static String untrusted(Path dir, boolean link, int owner, Set<PosixFilePermission> mode, int euid, String consequence) {
        if (link) {
            return dir + " is a symbolic link: " + consequence + " (it must be a directory of its own); remove it and let dmap watch make it again";
        }
        if (owner == euid && !mode.contains(PosixFilePermission.GROUP_WRITE) && !mode.contains(PosixFilePermission.OTHERS_WRITE)) {
            return null;
        }
        String what = dir + " is owned by uid " + owner + " with mode " + PosixFilePermissions.toString(mode) + ": " + consequence
                + " (it must be this user's, " + euid + ", writable by no one else); ";
        if (owner == 0 && euid != 0 && !mode.contains(PosixFilePermission.GROUP_WRITE) && !mode.contains(PosixFilePermission.OTHERS_WRITE)) {
            return what + "it is root's (dmap watch ran as root): run as root to read it";
        }
        return what + "remove it and let dmap watch make it again";
    }
}
