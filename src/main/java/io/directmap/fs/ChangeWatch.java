package io.directmap.fs;

import io.directmap.sys.Errno;
import io.directmap.sys.Fanotify;
import io.directmap.sys.FileHandle;
import io.directmap.sys.OpenWriters;
import io.directmap.sys.Statx;
import io.directmap.sys.SysException;
import io.directmap.sys.TaskSyscall;
import io.directmap.sys.TaskSyscall.Access;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * How the file system hears, before it happens, that someone is about to change a file a device
 * maps: one fanotify pre-content group ({@link Fanotify}), an inode mark per watched file, and a
 * listener per {@link Watch} that answers each change with a {@link Verdict}.
 *
 * <p>The flow of one event: a task opens a marked file for writing, writes, truncates, punches
 * a hole or maps it shared and writable; the kernel holds it inside that system call and queues
 * a permission event. The reader thread reads it, finds the inode's watches, and asks
 * {@link TaskSyscall} what the blocked task is doing (the event does not say). A read, a read-only
 * open or a private mapping is allowed at once, on the reader thread. Anything else goes to a
 * virtual thread of its own, which asks every listener of the inode (any {@link Verdict.Deny}
 * wins) and answers; so a listener may block, invalidating mappings and waiting for devices to
 * let go, and one slow file never holds another file's events, nor anyone's reads.
 *
 * <pre>
 *   writer task            kernel                  reader thread        event thread    listener
 *   pwrite(fd, 100@8192) -> FAN_PRE_ACCESS 8192+4096
 *        (blocked)                               -> read, fstat(inode),
 *                                                   /proc/TID/syscall: pwrite64
 *                                                                     -> changing(WRITE 8192+4096)
 *                                                                                      invalidate, wait
 *                                                                     <- Allow / Deny(ETXTBSY)
 *        &lt;- returns (or fails ETXTBSY) &lt;- FAN_ALLOW / FAN_DENY_ERRNO
 * </pre>
 *
 * <p>Every permission event gets exactly one answer: a listener that throws counts as allow (and
 * is logged), and when the watch closes, or its process dies, the kernel answers whatever is
 * still pending with allow, so nothing stays blocked or denied. Events of our own ordinary
 * descriptors arrive like anyone's (a write by this JVM must be seen too); only
 * {@link Watch#quietHandle quiet handles} are silent. A listener must not touch the file through
 * an ordinary descriptor of its own while answering: it would wait for its own answer.
 *
 * <p>What it cannot see, by construction (see {@link Fanotify}): descriptors opened for writing
 * before the mark ({@link #watch} refuses then), and stores through a shared writable mapping
 * after mmap() (reported once, at mmap, as {@link Change.Kind#MMAP_WRITE}).
 */
public final class ChangeWatch implements AutoCloseable {
    private static final long MASK = Fanotify.FAN_OPEN_PERM | Fanotify.FAN_PRE_ACCESS | Fanotify.FAN_CLOSE_WRITE;
    /** Consecutive failed reads after which the watch gives up (each is retried at once). */
    private static final int READ_TRIES = 3;
    // <linux/falloc.h>
    private static final int FALLOC_FL_PUNCH_HOLE = 0x02, FALLOC_FL_COLLAPSE_RANGE = 0x08, FALLOC_FL_INSERT_RANGE = 0x20;

    /** The task that is about to do something: its process, its thread, its command (comm). */
    public record Task(int pid, int tid, String command) {
        @Override public String toString() { return command + " (pid " + pid + (tid != pid ? ", tid " + tid : "") + ")"; }
    }

    /** A change about to happen to [offset, offset + length) of the file; detail says who and how. */
    public record Change(Kind kind, long offset, long length, String detail) {
        /** What kind of change. */
        public enum Kind {
            /** write, pwrite, writev, copy_file_range into the file (page-rounded range). */
            WRITE,
            /** truncate or ftruncate: offset is the new size, length reaches to Long.MAX_VALUE. */
            TRUNCATE,
            /** fallocate other than punching (zeroing, collapsing, inserting, allocating). */
            FALLOCATE,
            /** fallocate FALLOC_FL_PUNCH_HOLE. */
            PUNCH_HOLE,
            /** mmap MAP_SHARED writable: from now on stores may change the range with no further event. */
            MMAP_WRITE,
            /** Not known what (io_uring, a vanished task, an unknown call): the range may change. */
            UNKNOWN
        }

        /** The first byte after the range (Long.MAX_VALUE at most). */
        public long end() { return length > Long.MAX_VALUE - offset ? Long.MAX_VALUE : offset + length; }
    }

    /** A listener's answer. */
    public sealed interface Verdict {
        /** Let it happen. */
        record Allow() implements Verdict {}

        /**
         * Refuse it: the task's call fails with errno (the kernel takes EPERM, EIO, EBUSY, ETXTBSY,
         * EAGAIN, ENOSPC, EDQUOT; any other becomes EPERM). reason is for people and logs.
         */
        record Deny(int errno, String reason) implements Verdict {}

        /** The one Allow. */
        Verdict ALLOW = new Allow();
    }

    /** Told of the changes to a watched file; called on threads of the watch, never the reader's. */
    public interface Listener {
        /** t opens the file for writing (a.forWrite()) or to truncate it (a.truncates()). */
        Verdict opening(Task t, Access.Open a);

        /** t is about to change c's range. */
        Verdict changing(Task t, Change c);

        /** A descriptor t had open for writing was closed (a notification: nothing to answer). */
        void writerClosed(Task t);

        /**
         * Whether a change of [start, end) (a WRITE, FALLOCATE, PUNCH_HOLE, TRUNCATE or
         * MMAP_WRITE range; never asked for UNKNOWN changes or opens) may matter to this
         * listener. Asked on the reader thread, so it must be quick and never block: when every
         * listener of the inode says false, the change is allowed at once and {@link #changing}
         * is not called. The default, true, always asks.
         */
        default boolean interested(long start, long end) { return true; }
    }

    /** Why a file cannot be watched. */
    public enum Reason {
        /** No fanotify pre-content group here (not root, an old kernel, or the watch gave up). */
        UNAVAILABLE("changes cannot be watched here"),
        /** The file's file system refuses pre-content marks (tmpfs). */
        FILESYSTEM_REFUSES("the file system does not report changes before they happen"),
        /** Someone had it open for writing before the mark: their descriptor raises no events. */
        OPEN_FOR_WRITING("the file is open for writing elsewhere");

        private final String summary;

        Reason(String summary) { this.summary = summary; }

        /** A sentence for people. */
        public String summary() { return summary; }
    }

    /** What {@link #watch} gives: a {@link Watch}, or a {@link Refused} with its reason. */
    public sealed interface Watched permits Watch, Refused {}

    /** The file is not watched, and why. */
    public record Refused(Reason reason, String detail) implements Watched {
        @Override public String toString() { return reason.summary() + ": " + detail; }
    }

    /** One watched inode: the descriptor its mark was made through (removal needs one), and its watches. */
    private static final class Inode {
        final long dev, ino;
        final String path;
        final FileHandle anchor;
        final List<Watch> watches = new CopyOnWriteArrayList<>();
        /** Counted in {@link #MARKED_HERE} (from registration until just before its mark goes). */
        final AtomicBoolean counted = new AtomicBoolean();

        Inode(long dev, long ino, String path, FileHandle anchor) {
            this.dev = dev;
            this.ino = ino;
            this.path = path;
            this.anchor = anchor;
        }
    }

    private record Key(long dev, long ino) {}

    /**
     * The inodes some ChangeWatch of this process has marked, and how many: while one is counted
     * here, a pre-content mark has been on the inode without a gap since a check found no writer
     * open (or since another such mark), so every writer open now raises events (pre-content mode
     * is decided per descriptor at open, from any group's marks). Another watch of the inode
     * then needs no check of its own, which our own writers (a quiet writable handle) would fail.
     * An inode is counted after its mark is placed and uncounted before its mark is removed.
     */
    private static final Map<Key, Integer> MARKED_HERE = new ConcurrentHashMap<>();

    private static void count(Inode in) {
        if (in.counted.compareAndSet(false, true)) MARKED_HERE.merge(new Key(in.dev, in.ino), 1, Integer::sum);
    }

    private static void uncount(Inode in) {
        if (in.counted.compareAndSet(true, false)) {
            MARKED_HERE.computeIfPresent(new Key(in.dev, in.ino), (k, n) -> n <= 1 ? null : n - 1);
        }
    }

    private final Fanotify group;
    private final Thread reader;
    private final Map<Key, Inode> inodes = new ConcurrentHashMap<>();
    /** Orders marking and unmarking of inodes (the reader never takes it). */
    private final Object marks = new Object();
    private final AtomicLong answeredAtOnce = new AtomicLong(), asked = new AtomicLong();
    private volatile String why;
    private volatile boolean closing;
    /** Set by giveUp: the group is (being) closed, its marks gone with it. */
    private volatile boolean gaveUp;

    private ChangeWatch(Fanotify group, String why) {
        this.group = group;
        this.why = why;
        if (group == null) {
            reader = null;
            return;
        }
        reader = Thread.ofPlatform().daemon().name("dmap-fanotify").unstarted(this::readLoop);
        reader.start();
    }

    /**
     * A watch with a group of its own and its reader thread; where pre-content events cannot be
     * had, one whose {@link #available()} is false and whose {@link #why()} says why.
     */
    public static ChangeWatch open() {
        Fanotify.Probe probe = Fanotify.probe();
        if (!probe.works()) return new ChangeWatch(null, probe.why());
        try {
            return new ChangeWatch(Fanotify.open("dmap changes"), "");
        } catch (SysException e) {
            return new ChangeWatch(null, e.getMessage());
        }
    }

    /** True while changes can be watched. */
    public boolean available() { return why.isEmpty() && !closing; }

    /** Why changes cannot be watched ("" when they can). */
    public String why() { return closing ? "the change watch was closed" : why; }

    /** Permission events answered on the reader thread (reads, read-only opens, unwatched inodes, changes no listener is interested in). */
    public long answeredAtOnce() { return answeredAtOnce.get(); }

    /** Permission events handed to listeners. */
    public long asked() { return asked.get(); }

    /**
     * Watches file: l hears of every open for writing and change by any descriptor but a quiet
     * one, until the returned Watch is closed. Refused (a value, not an exception) when changes
     * cannot be watched here, the file system refuses, or the file is open for writing somewhere
     * (a descriptor opened before the mark raises no event: checked after marking with a read
     * lease, so a writer opening meanwhile is either seen by the lease or raises events; skipped
     * while another watch of this process keeps the inode marked, see {@link #MARKED_HERE}).
     * Throws when the kernel fails otherwise (too many marks), leaving nothing marked. Changes
     * made before this returns are not reported: watch first, then map.
     */
    public Watched watch(OpenFile file, Listener l) throws IOException {
        if (!available()) return new Refused(Reason.UNAVAILABLE, why());
        Statx.Info st = file.stat();
        Key key = new Key(TaskSyscall.dev(st.devMajor(), st.devMinor()), st.inode());
        synchronized (marks) {
            Inode in = inodes.get(key);
            if (in == null) {
                Watched refused = mark(file, key);
                if (refused != null) return refused;
                in = inodes.get(key);
            }
            Watch w = new Watch(in, file, l);
            in.watches.add(w);
            return w;
        }
    }

    /** Marks file's inode and registers it; a Refused when it cannot be watched, else null. */
    private Watched mark(OpenFile file, Key key) throws IOException {
        try {
            group.mark(file.handle(), MASK);
        } catch (SysException e) {
            if (e.errno() == Errno.EOPNOTSUPP) {
                return new Refused(Reason.FILESYSTEM_REFUSES, file.path() + " (" + file.fsType()
                        + "): fanotify_mark FAN_PRE_ACCESS: EOPNOTSUPP; mappings of it cannot be kept coherent with writers");
            }
            throw e;
        }
        FileHandle anchor = null;
        try {
            // Our own read-only descriptor: raises a read-only open, answered at once by the reader.
            anchor = FileHandle.openRead(Path.of("/proc/self/fd/" + file.handle().fd()));
            if (!MARKED_HERE.containsKey(key) && OpenWriters.any(anchor)) {
                String who = String.join(", ", io.directmap.sys.Openers.of(file.path(), true));
                unmarkQuietly(file.handle());
                anchor.close();
                return new Refused(Reason.OPEN_FOR_WRITING, file.path() + " is open for writing"
                        + (who.isEmpty() ? "" : " by " + who) + " since before it was watched; its writes would go unseen: "
                        + "close it there and try again");
            }
            Inode in = new Inode(key.dev(), key.ino(), file.path().toString(), anchor);
            inodes.put(key, in);
            count(in);
            return null;
        } catch (IOException | RuntimeException e) {
            unmarkQuietly(file.handle());
            if (anchor != null) {
                try {
                    anchor.close();
                } catch (SysException c) {
                    e.addSuppressed(c);
                }
            }
            throw e;
        }
    }

    private void unmarkQuietly(FileHandle h) {
        try {
            group.unmark(h, MASK);
        } catch (SysException e) {
            log("removing the mark of " + h.path() + " failed: " + e.getMessage(), null);
        }
    }

    /** One listener's watch of one file. Closing the last watch of an inode removes its mark. */
    public final class Watch implements Watched, AutoCloseable {
        private final Inode inode;
        private final OpenFile file;
        private final Listener listener;
        private FileHandle quietRead, quietWrite;       // guarded by this
        private boolean closed;                          // guarded by this

        private Watch(Inode inode, OpenFile file, Listener listener) {
            this.inode = inode;
            this.file = file;
            this.listener = listener;
        }

        /** The watched file. */
        public OpenFile file() { return file; }

        private synchronized boolean isClosed() { return closed; }

        /**
         * A descriptor on the file that raises no events (the kernel's FMODE_NONOTIFY), for the
         * device's own page-cache reads (and, writable, the WRITE fallback's writes): through an
         * ordinary one they would wait on their own listener. Owned by this watch, closed with it.
         * The first call opens it: a read-only open of ours, which the reader allows at once, so
         * it may be called from a listener. A writable one breaks read leases on the file once,
         * as any open for writing does.
         */
        public synchronized FileHandle quietHandle(boolean writable) throws SysException {
            if (closed) throw new SysException("quiet open", file.path().toString(), Errno.EBADF, "the watch was closed");
            if (writable) {
                if (quietWrite == null) quietWrite = Fanotify.quietOpen(inode.anchor, true);
                return quietWrite;
            }
            if (quietRead == null) quietRead = Fanotify.quietOpen(inode.anchor, false);
            return quietRead;
        }

        /**
         * Stops listening; the last watch of the inode removes its mark. Idempotent. The listener
         * is not asked about events after this; a call already in progress may still finish.
         */
        @Override
        public void close() throws SysException {
            synchronized (this) {
                if (closed) return;
                closed = true;
            }
            SysException failure = null;
            for (FileHandle h : new FileHandle[] {quietRead, quietWrite}) {
                if (h == null) continue;
                try {
                    h.close();
                } catch (SysException e) {
                    failure = e;
                }
            }
            synchronized (marks) {
                inode.watches.remove(this);
                if (inode.watches.isEmpty() && inodes.remove(new Key(inode.dev, inode.ino), inode)) {
                    uncount(inode);
                    if (!closing && !gaveUp) unmarkQuietly(inode.anchor);
                    try {
                        inode.anchor.close();
                    } catch (SysException e) {
                        failure = e;
                    }
                }
            }
            if (failure != null) throw failure;
        }

        @Override public String toString() { return "watch of " + file.path(); }
    }

    // ---- the reader thread ----

    private void readLoop() {
        int failures = 0;
        while (!closing) {
            List<Fanotify.Event> events;
            try {
                events = group.read();
                failures = 0;
            } catch (SysException e) {
                if (++failures < READ_TRIES) continue;
                giveUp("reading fanotify events failed " + failures + " times: " + e.getMessage());
                return;
            } catch (RuntimeException e) {
                giveUp("reading fanotify events failed: " + e);
                return;
            }
            if (events == null) return;
            for (Fanotify.Event e : events) {
                try {
                    handle(e);
                } catch (RuntimeException | Error t) {
                    log("handling a fanotify event failed: " + t + "; it is allowed", t);
                    answer(e, Fanotify.allow());
                }
            }
        }
    }

    private void handle(Fanotify.Event e) {
        if (e.file() == null) {
            // FAN_Q_OVERFLOW: cannot happen with an unlimited queue; if it does, anything may have changed.
            for (Inode in : inodes.values()) tell(in, new Change(Change.Kind.UNKNOWN, 0, Long.MAX_VALUE, "event queue overflow"));
            return;
        }
        Inode in = inodeOf(e);
        if (!e.isPermission()) {
            if (in != null && (e.mask() & Fanotify.FAN_CLOSE_WRITE) != 0) {
                Task t = taskOf(e.tid());
                for (Watch w : in.watches) Thread.ofVirtual().name("dmap-fanotify closed").start(() -> {
                    try {
                        w.listener.writerClosed(t);
                    } catch (RuntimeException | Error x) {
                        log("the listener of " + in.path + " failed on writerClosed: " + x, x);
                    }
                });
            }
            closeQuietly(e.file());
            return;
        }
        if (in == null || in.watches.isEmpty()) {
            answerAtOnce(e);
            return;
        }
        Access a = TaskSyscall.of(e.tid(), in.dev, in.ino);
        if ((e.mask() & Fanotify.FAN_OPEN_PERM) != 0) {
            Access.Open open = a instanceof Access.Open o ? o : new Access.Open(true, true);   // unknown: assume the worst
            if (!open.forWrite()) {
                answerAtOnce(e);
                return;
            }
            Task t = taskOf(e.tid());
            ask(e, in, w -> w.listener.opening(t, open));
            return;
        }
        Change c = change(a, e);
        if (c == null) {
            answerAtOnce(e);
            return;
        }
        if (c.kind() != Change.Kind.UNKNOWN && !anyInterested(in, c)) {
            answerAtOnce(e);
            return;
        }
        Task t = taskOf(e.tid());
        ask(e, in, w -> w.listener.changing(t, c));
    }

    /** Whether any open watch of in may care about c (a listener that fails is counted as caring). */
    private static boolean anyInterested(Inode in, Change c) {
        for (Watch w : in.watches) {
            if (w.isClosed()) continue;
            try {
                if (w.listener.interested(c.offset(), c.end())) return true;
            } catch (RuntimeException | Error x) {
                log("the listener of " + in.path + " failed on interested: " + x + "; it is asked", x);
                return true;
            }
        }
        return false;
    }

    /** The watched inode the event is about, or null (an inode unmarked meanwhile, or fstat failed). */
    private Inode inodeOf(Fanotify.Event e) {
        try {
            Statx.Info st = Statx.of(e.file());
            return inodes.get(new Key(TaskSyscall.dev(st.devMajor(), st.devMinor()), st.inode()));
        } catch (SysException x) {
            return null;
        }
    }

    /** What a FAN_PRE_ACCESS with access a changes; null when it changes nothing (reads). */
    static Change change(Access a, Fanotify.Event e) {
        long off = e.offset() >= 0 ? e.offset() : 0;
        long len = e.offset() >= 0 ? e.count() : Long.MAX_VALUE;
        String by = " by thread " + e.tid();
        return switch (a) {
            case Access.Read r -> null;
            case Access.Mmap m when !m.sharedWritable() -> null;
            case Access.Mmap m -> new Change(Change.Kind.MMAP_WRITE, off, len, "mmap MAP_SHARED writable" + by);
            case Access.Write w -> new Change(Change.Kind.WRITE, off, len, w.call() + by);
            case Access.Truncate t -> new Change(Change.Kind.TRUNCATE, t.size(), Long.MAX_VALUE - t.size(),
                    "truncate to " + t.size() + " bytes" + by);
            case Access.Fallocate f when (f.mode() & FALLOC_FL_PUNCH_HOLE) != 0 ->
                    new Change(Change.Kind.PUNCH_HOLE, off, len, "fallocate punch hole" + by);
            case Access.Fallocate f when (f.mode() & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)) != 0 ->
                    new Change(Change.Kind.FALLOCATE, off, Long.MAX_VALUE - off,
                            "fallocate mode 0x" + Integer.toHexString(f.mode()) + " shifts the rest of the file" + by);
            case Access.Fallocate f -> new Change(Change.Kind.FALLOCATE, off, len,
                    "fallocate mode 0x" + Integer.toHexString(f.mode()) + by);
            case Access.Open o -> new Change(Change.Kind.UNKNOWN, off, len, "an open reported as an access" + by);
            case Access.Unknown u -> new Change(Change.Kind.UNKNOWN, off, len, u.why() + by);
        };
    }

    /** Asks every watch of in on a virtual thread of its own; any Deny wins; answers exactly once. */
    private void ask(Fanotify.Event e, Inode in, java.util.function.Function<Watch, Verdict> question) {
        asked.incrementAndGet();
        List<Watch> watches = List.copyOf(in.watches);
        Thread.ofVirtual().name("dmap-fanotify " + in.path).start(() -> {
            Verdict.Deny deny = null;
            try {
                for (Watch w : watches) {
                    if (w.isClosed()) continue;
                    Verdict v;
                    try {
                        v = question.apply(w);
                    } catch (RuntimeException | Error x) {
                        log("the listener of " + in.path + " failed: " + x + "; counted as allow", x);
                        v = Verdict.ALLOW;
                    }
                    if (deny == null && v instanceof Verdict.Deny d) deny = d;
                }
            } finally {
                answer(e, deny == null ? Fanotify.allow() : Fanotify.response(false, deny.errno()));
            }
        });
    }

    private void tell(Inode in, Change c) {
        for (Watch w : in.watches) Thread.ofVirtual().name("dmap-fanotify " + in.path).start(() -> {
            try {
                w.listener.changing(new Task(0, 0, "?"), c);
            } catch (RuntimeException | Error x) {
                log("the listener of " + in.path + " failed: " + x, x);
            }
        });
    }

    private void answerAtOnce(Fanotify.Event e) {
        answeredAtOnce.incrementAndGet();
        answer(e, Fanotify.allow());
    }

    /**
     * Writes the answer and closes the event's descriptor. A failed write is tried once more; a
     * deny the kernel refuses becomes a plain deny (the kernel would keep the task blocked). If it
     * still fails, the task stays blocked until the group closes (then the kernel allows it).
     */
    private void answer(Fanotify.Event e, int response) {
        try {
            try {
                group.respond(e, response);
            } catch (SysException first) {
                int again = first.errno() == Errno.EINVAL && response != Fanotify.allow() ? Fanotify.response(false, Errno.EPERM) : response;
                try {
                    group.respond(e, again);
                } catch (SysException second) {
                    log("answering a fanotify event failed twice: " + second.getMessage()
                            + "; the task stays blocked until the watch is closed", null);
                }
            }
        } finally {
            closeQuietly(e.file());
        }
    }

    /** The task of thread tid, from /proc (Tgid and comm); what is gone is "?". */
    static Task task(int tid) {
        int pid = tid;
        String command = "?";
        try {
            String status = TaskSyscall.readProc("/proc/" + tid + "/status");
            int at = status.startsWith("Tgid:") ? 0 : status.indexOf("\nTgid:") + 1;
            if (at > 0 || status.startsWith("Tgid:")) {
                int eol = status.indexOf('\n', at);
                pid = Integer.parseInt(status.substring(at + 5, eol < 0 ? status.length() : eol).trim());
            }
            command = TaskSyscall.readProc("/proc/" + pid + "/comm").trim();
        } catch (IOException | RuntimeException e) {
            // gone
        }
        return new Task(pid, tid, command);
    }

    /** How long the reader reuses what /proc said of a thread (a writer's calls come in bursts). */
    static final long TASK_CACHE_NANOS = 100_000_000L;
    private static final int TASK_CACHE_MAX = 256;

    private record SeenTask(Task task, long at) {}

    /** The reader's cache of {@link #task}: tid -> what it said and when (touched by the reader thread only). */
    private final Map<Integer, SeenTask> tasks = new java.util.HashMap<>();

    /**
     * {@link #task}(tid), reused for {@link #TASK_CACHE_NANOS}: the same writer's many calls
     * cost /proc one look. A thread that exec()s or exits and whose tid is reused within that
     * time may be named by its former self (the name is for messages only).
     */
    private Task taskOf(int tid) {
        long now = System.nanoTime();
        SeenTask seen = tasks.get(tid);
        if (seen != null && now - seen.at() < TASK_CACHE_NANOS) return seen.task();
        if (tasks.size() >= TASK_CACHE_MAX) tasks.values().removeIf(x -> now - x.at() >= TASK_CACHE_NANOS);
        if (tasks.size() >= TASK_CACHE_MAX) tasks.clear();
        Task t = task(tid);
        tasks.put(tid, new SeenTask(t, now));
        return t;
    }

    /**
     * The reader cannot receive events any more: from now on changes would go unseen. Every
     * listener is told that anything may change (each on a thread of its own, so the devices let
     * go), and once they have answered the group is closed: the kernel then allows every task it
     * held. New watches are refused.
     */
    private void giveUp(String reason) {
        gaveUp = true;
        why = reason + "; changes can no longer be heard";
        log(why + "; every watched file is treated as changed", null);
        List<Thread> told = new ArrayList<>();
        for (Inode in : inodes.values()) {
            for (Watch w : in.watches) {
                told.add(Thread.ofVirtual().name("dmap-fanotify gave up " + in.path).start(() -> {
                    try {
                        w.listener.changing(new Task(0, 0, "?"), new Change(Change.Kind.UNKNOWN, 0, Long.MAX_VALUE, why));
                    } catch (RuntimeException | Error x) {
                        log("the listener of " + in.path + " failed: " + x, x);
                    }
                }));
            }
        }
        Thread.ofVirtual().name("dmap-fanotify close").start(() -> {
            for (Thread t : told) {
                try {
                    t.join();
                } catch (InterruptedException x) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            for (Inode in : inodes.values()) uncount(in);
            group.close();
        });
    }

    private static void closeQuietly(FileHandle h) {
        if (h == null) return;
        try {
            h.close();
        } catch (SysException e) {
            // the kernel's event descriptor: nothing to do about a failed close
        }
    }

    private static void log(String message, Throwable t) {
        System.err.println("dmap: " + message);
        if (t != null && System.getenv("DMAP_DEBUG") != null) t.printStackTrace();
    }

    /**
     * Stops the reader, closes the group (the kernel removes every mark and allows every task
     * still held), and closes every watch's descriptors. Listeners still running finish; their
     * answers then go nowhere.
     */
    @Override
    public void close() throws IOException {
        if (group == null || closing) {
            closing = true;
            return;
        }
        closing = true;
        group.wake();
        try {
            reader.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (Inode in : inodes.values()) uncount(in);
        group.close();
        SysException failure = null;
        for (Inode in : List.copyOf(inodes.values())) {
            for (Watch w : List.copyOf(in.watches)) {
                try {
                    w.close();
                } catch (SysException e) {
                    failure = e;
                }
            }
        }
        if (failure != null) throw failure;
    }
}
