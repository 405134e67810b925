package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * A fanotify group of class FAN_CLASS_PRE_CONTENT (fanotify(7), fanotify_init(2),
 * fanotify_mark(2), {@code <linux/fanotify.h>} of Linux 6.14+: the installed header may predate
 * FAN_PRE_ACCESS, so the constants are written out here).
 *
 * <p>What it is for: a task that opens, writes, truncates, punches or maps a marked file is held
 * inside its system call until the group answers (FAN_ALLOW, FAN_DENY, FAN_DENY_ERRNO(err)),
 * so a listener can take device mappings back before the change happens.
 *
 * <p>Measured on this 6.18 kernel (ext4 loop mount; the project's kernel-facts notes):
 * <ul>
 * <li>FAN_PRE_ACCESS comes before read, write, copy_file_range, truncate/ftruncate, fallocate
 *     and mmap, with a range info record (type 6) <em>rounded out to whole pages</em>
 *     (pwrite of 100 bytes at 8192 reports 8192+4096). Truncate reports only the page of the
 *     new size (ftruncate 5000 reports 4096+4096; growing to 16384 reports 16384+0): the old
 *     size is never said. The event does not say the direction: {@link TaskSyscall} reads it
 *     from the blocked task.</li>
 * <li>Stores through a MAP_SHARED mapping (page faults) produce no event at all; only mmap()
 *     itself does.</li>
 * <li>Descriptors opened before the mark generate no events (the pre-content mode is decided at
 *     open): a pwrite through one went through unseen.</li>
 * <li>The event's own descriptor is opened FMODE_NONOTIFY: reading through it raises no event
 *     (and so cannot deadlock on its own listener). {@link #quietOpen} hands out such a one.</li>
 * <li>FAN_DENY_ERRNO(ETXTBSY) on FAN_OPEN_PERM gives the opener ETXTBSY; on FAN_PRE_ACCESS the
 *     reader gets EPERM, EIO, EBUSY, EAGAIN, ENOSPC or ETXTBSY exactly. A response with another
 *     errno (EINVAL) is rejected with EINVAL <em>and the event stays pending</em>:
 *     {@link #response} only builds answers the kernel takes.</li>
 * <li>tmpfs refuses a FAN_PRE_ACCESS mark with EOPNOTSUPP (FAN_OPEN_PERM alone is accepted).</li>
 * <li>FAN_REPORT_TID works with permission events: the event's pid is the blocked thread.</li>
 * <li>The group descriptor is inherited by fork(2) (FAN_CLOEXEC only covers exec): a forked
 *     child holding it keeps the group alive. When the last holder dies, the kernel answers
 *     every pending event with allow: the blocked opener got its descriptor at once.</li>
 * </ul>
 *
 * <p>One thread reads ({@link #read}); any thread may answer ({@link #respond}). The queue is
 * unlimited (FAN_UNLIMITED_QUEUE): a full queue would drop a permission event, that is allow it
 * without asking.
 */
public final class Fanotify implements AutoCloseable {
    // fanotify_init flags
    private static final int FAN_CLOEXEC = 0x1, FAN_CLASS_NOTIF = 0x0, FAN_CLASS_PRE_CONTENT = 0x8,
            FAN_UNLIMITED_QUEUE = 0x10, FAN_REPORT_TID = 0x100;
    /** Event masks. */
    public static final long FAN_CLOSE_WRITE = 0x08, FAN_OPEN = 0x20, FAN_Q_OVERFLOW = 0x4000,
            FAN_OPEN_PERM = 0x10000, FAN_PRE_ACCESS = 0x100000;
    private static final int FAN_MARK_ADD = 0x1, FAN_MARK_REMOVE = 0x2;
    private static final int FAN_ALLOW = 0x1, FAN_DENY = 0x2, FAN_ERRNO_SHIFT = 24, FAN_ERRNO_MASK = 0xff;
    private static final int FAN_EVENT_INFO_TYPE_RANGE = 6, FAN_NOFD = -1;
    private static final int FANOTIFY_METADATA_VERSION = 3;
    // event_f_flags: the open flags of the descriptors events carry (O_LARGEFILE is forced on 64-bit)
    private static final int O_RDONLY = 0, O_RDWR = 2, O_CLOEXEC = 02000000;
    private static final int AT_FDCWD = -100;
    private static final int EFD_CLOEXEC = 02000000;
    private static final short POLLIN = 1;
    private static final int EMFILE = 24, ENOSPC = 28, ENOENT = 2;

    /** The errnos FAN_DENY_ERRNO may carry (fanotify_user.c, fanotify_is_valid_errno, and measured). */
    private static final Set<Integer> DENY_ERRNOS = Set.of(Errno.EPERM, Errno.EIO, Errno.EBUSY, 26 /* ETXTBSY */,
            Errno.EAGAIN, ENOSPC, 122 /* EDQUOT */);

    // (state, unsigned flags, unsigned event_f_flags)int
    private static final MethodHandle INIT = Libc.errnoHandle("fanotify_init",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    // (state, int fd, unsigned flags, uint64_t mask, int dirfd, const char* path)int
    private static final MethodHandle MARK = Libc.errnoHandle("fanotify_mark",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, ADDRESS));
    // (state, int fd, void* buf, size_t count)ssize_t
    private static final MethodHandle READ = Libc.errnoHandle("read",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE = Libc.errnoHandle("write",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    // (state, struct pollfd*, nfds_t, int timeout)int
    private static final MethodHandle POLL = Libc.errnoHandle("poll",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    // (state, unsigned initval, int flags)int
    private static final MethodHandle EVENTFD = Libc.errnoHandle("eventfd",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle CLOSE = Libc.errnoHandle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));

    /**
     * One event. file is the kernel's descriptor on the file (quiet: FMODE_NONOTIFY), null for
     * FAN_Q_OVERFLOW; the reader closes it after answering. offset and count are the range
     * record's (page-rounded), or -1 when the event has none.
     */
    public record Event(long mask, FileHandle file, int tid, long offset, long count) {
        /** A permission event: it must be answered exactly once. */
        public boolean isPermission() { return (mask & (FAN_OPEN_PERM | FAN_PRE_ACCESS)) != 0; }
    }

    /** Whether pre-content events work here, and if not, why (a sentence a person can act on). */
    public record Probe(boolean works, String why) {}

    private final String name;
    private final int fd;
    private final int wakeFd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer;
    private final MemorySegment pollFds;
    private final MemorySegment response;
    private final MemorySegment one;
    private volatile boolean closed;

    private Fanotify(String name, int fd, int wakeFd) {
        this.name = name;
        this.fd = fd;
        this.wakeFd = wakeFd;
        // Each event read opens a descriptor: 8 KiB (170 events at most) bounds the burst.
        this.buffer = arena.allocate(8 * 1024, 8);
        this.pollFds = arena.allocate(16, 8);      // struct pollfd { int fd; short events; short revents; } x2
        this.response = arena.allocate(8, 8);      // struct fanotify_response { __s32 fd; __u32 response; }
        this.one = arena.allocate(8, 8);
    }

    /**
     * A pre-content group (FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_REPORT_TID |
     * FAN_UNLIMITED_QUEUE, events' descriptors O_RDONLY | O_CLOEXEC). name appears in messages.
     */
    public static Fanotify open(String name) throws SysException {
        int g = init(name, FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_REPORT_TID | FAN_UNLIMITED_QUEUE, O_RDONLY | O_CLOEXEC);
        int w = (int) Libc.call(s -> (int) EVENTFD.invokeExact(s, 0, EFD_CLOEXEC));
        if (w < 0) {
            closeQuietly(g);
            throw new SysException("eventfd", name, -w, "too many open files? (ulimit -n)");
        }
        return new Fanotify(name, g, w);
    }

    private static int init(String name, int flags, int eventFlags) throws SysException {
        if (Faults.fire(FaultPoint.FANOTIFY_INIT)) {
            throw new SysException("fanotify_init", name, EMFILE, "fault point fanotify_init; " + initHint(EMFILE));
        }
        int g = (int) Libc.call(s -> (int) INIT.invokeExact(s, flags, eventFlags));
        if (g < 0) throw new SysException("fanotify_init", name, -g, initHint(-g));
        return g;
    }

    private static String initHint(int errno) {
        return switch (errno) {
            case Errno.EPERM -> "fanotify permission events need root (CAP_SYS_ADMIN): run as root";
            case Errno.EINVAL -> "this kernel lacks pre-content fanotify (Linux 6.14+, CONFIG_FANOTIFY_ACCESS_PERMISSIONS)";
            case Errno.ENOSYS -> "this kernel has no fanotify (CONFIG_FANOTIFY)";
            case EMFILE -> "too many fanotify groups: raise /proc/sys/fs/fanotify/max_user_groups or close some";
            default -> "";
        };
    }

    /** Adds mask to the inode mark of file (FAN_MARK_ADD on its descriptor). */
    public void mark(FileHandle file, long mask) throws SysException {
        if (Faults.fire(FaultPoint.FANOTIFY_MARK)) {
            throw new SysException("fanotify_mark", file.path(), ENOSPC, "fault point fanotify_mark; " + markHint(ENOSPC));
        }
        int target = file.fd();
        long rc = Libc.call(s -> (int) MARK.invokeExact(s, fd, FAN_MARK_ADD, mask, target, MemorySegment.NULL));
        if (rc < 0) throw new SysException("fanotify_mark FAN_MARK_ADD", file.path(), (int) -rc, markHint((int) -rc));
    }

    private static String markHint(int errno) {
        return switch (errno) {
            case Errno.EOPNOTSUPP -> "this file system does not support pre-content events (tmpfs does not; ext4, xfs, btrfs do)";
            case Errno.EINVAL -> "this kernel lacks FAN_PRE_ACCESS (Linux 6.14+)";
            case ENOSPC -> "too many fanotify marks: raise /proc/sys/fs/fanotify/max_user_marks";
            default -> "";
        };
    }

    /** Removes the inode mark of file; a mark already gone (ENOENT) is fine. */
    public void unmark(FileHandle file, long mask) throws SysException {
        int target = file.fd();
        long rc = Libc.call(s -> (int) MARK.invokeExact(s, fd, FAN_MARK_REMOVE, mask, target, MemorySegment.NULL));
        if (rc < 0 && -rc != ENOENT) throw new SysException("fanotify_mark FAN_MARK_REMOVE", file.path(), (int) -rc, "");
    }

    /**
     * Waits for events and reads them; returns null once {@link #wake} was called (the reader
     * should stop), else the events read (possibly none, after EINTR). Each event with a file
     * must be closed by the caller, after answering it if it is a permission event.
     */
    public List<Event> read() throws SysException {
        return read(-1);
    }

    /** {@link #read}, waiting at most timeoutMs (-1: no limit); an empty list when the time passed. */
    List<Event> read(int timeoutMs) throws SysException {
        pollFds.set(JAVA_INT, 0, fd);
        pollFds.set(JAVA_SHORT, 4, POLLIN);
        pollFds.set(JAVA_SHORT, 6, (short) 0);
        pollFds.set(JAVA_INT, 8, wakeFd);
        pollFds.set(JAVA_SHORT, 12, POLLIN);
        pollFds.set(JAVA_SHORT, 14, (short) 0);
        long rc = Libc.call(s -> (int) POLL.invokeExact(s, pollFds, 2L, timeoutMs));
        if (rc < 0) {
            if (-rc == Errno.EINTR) return List.of();
            throw new SysException("poll", name, (int) -rc, "");
        }
        if (closed || (pollFds.get(JAVA_SHORT, 14) & POLLIN) != 0) return null;
        if ((pollFds.get(JAVA_SHORT, 6) & POLLIN) == 0) return List.of();
        if (Faults.fire(FaultPoint.FANOTIFY_READ)) {
            throw new SysException("read", "fanotify group " + name, Errno.EIO, "fault point fanotify_read");
        }
        long n = Libc.call(s -> (long) READ.invokeExact(s, fd, buffer, buffer.byteSize()));
        if (n < 0) {
            if (-n == Errno.EINTR || -n == Errno.EAGAIN) return List.of();
            throw new SysException("read", "fanotify group " + name, (int) -n,
                    -n == EMFILE ? "too many open files to receive events (ulimit -n)" : "");
        }
        return parse(buffer, n);
    }

    /** The events in the first n bytes of buf (struct fanotify_event_metadata, then info records). */
    private List<Event> parse(MemorySegment buf, long n) {
        List<Event> events = new ArrayList<>();
        long at = 0;
        while (at + 24 <= n) {
            // struct fanotify_event_metadata { u32 event_len; u8 vers; u8 reserved; u16 metadata_len;
            //                                  aligned_u64 mask; s32 fd; s32 pid; }
            int len = buf.get(JAVA_INT, at);
            int vers = Byte.toUnsignedInt(buf.get(JAVA_BYTE, at + 4));
            int metaLen = Short.toUnsignedInt(buf.get(JAVA_SHORT, at + 6));
            if (len < 24 || at + len > n || vers != FANOTIFY_METADATA_VERSION) {
                throw new IllegalStateException("fanotify group " + name + ": malformed event (len " + len
                        + ", version " + vers + " at " + at + " of " + n + " bytes)");
            }
            long mask = buf.get(JAVA_LONG, at + 8);
            int evFd = buf.get(JAVA_INT, at + 16);
            int tid = buf.get(JAVA_INT, at + 20);
            long offset = -1, count = -1;
            for (long info = at + metaLen; info + 4 <= at + len; ) {
                // struct fanotify_event_info_header { u8 info_type; u8 pad; u16 len; }
                int type = Byte.toUnsignedInt(buf.get(JAVA_BYTE, info));
                int infoLen = Short.toUnsignedInt(buf.get(JAVA_SHORT, info + 2));
                if (infoLen < 4) break;
                if (type == FAN_EVENT_INFO_TYPE_RANGE && infoLen >= 24) {
                    // struct fanotify_event_info_range { hdr; u32 pad; u64 offset; u64 count; }
                    offset = buf.get(JAVA_LONG, info + 8);
                    count = buf.get(JAVA_LONG, info + 16);
                }
                info += infoLen;
            }
            FileHandle file = evFd == FAN_NOFD ? null : FileHandle.adopt(name + " event fd " + evFd, evFd);
            events.add(new Event(mask, file, tid, offset, count));
            at += len;
        }
        return events;
    }

    /** FAN_ALLOW, or FAN_DENY_ERRNO(errno) where the kernel takes that errno, else plain FAN_DENY (EPERM). */
    public static int response(boolean allow, int errno) {
        if (allow) return FAN_ALLOW;
        return DENY_ERRNOS.contains(errno) ? FAN_DENY | ((errno & FAN_ERRNO_MASK) << FAN_ERRNO_SHIFT) : FAN_DENY;
    }

    /** The answer that allows. */
    public static int allow() { return FAN_ALLOW; }

    /** True when FAN_DENY_ERRNO may carry errno (else the denied task gets EPERM). */
    public static boolean deniable(int errno) { return DENY_ERRNOS.contains(errno); }

    /**
     * Answers the permission event of event (its descriptor number names it) with response.
     * ENOENT (no such pending event: already answered, or the group is closing) is not an error.
     */
    public synchronized void respond(Event event, int answer) throws SysException {
        if (closed) return;      // the kernel answered every pending event when the group closed
        int eventFd = event.file().fd();
        if (Faults.fire(FaultPoint.FANOTIFY_RESPONSE)) {
            throw new SysException("write fanotify_response", name + " event fd " + eventFd, Errno.EIO,
                    "fault point fanotify_response");
        }
        response.set(JAVA_INT, 0, eventFd);
        response.set(JAVA_INT, 4, answer);
        long rc = Libc.call(s -> (long) WRITE.invokeExact(s, fd, response, 8L));
        if (rc < 0 && -rc != ENOENT) {
            throw new SysException("write fanotify_response", name + " event fd " + eventFd, (int) -rc,
                    -rc == Errno.EINVAL ? "the kernel refused the answer " + Integer.toHexString(answer)
                            + "; the task stays blocked until it is answered otherwise" : "");
        }
    }

    /** Makes a {@link #read} in progress (or the next) return null. */
    public synchronized void wake() {
        if (closed) return;
        one.set(JAVA_LONG, 0, 1L);
        try {
            long rc = Libc.call(s -> (long) WRITE.invokeExact(s, wakeFd, one, 8L));
            if (rc < 0) throw new IllegalStateException("eventfd write of " + name + ": " + Errno.name((int) -rc));
        } catch (SysException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Closes the group: the kernel removes its marks and answers every pending permission event
     * with allow. The reading thread must have returned from {@link #read} (call {@link #wake}
     * and wait for it first).
     */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        closeQuietly(fd);
        closeQuietly(wakeFd);
        arena.close();
    }

    private static void closeQuietly(int fd) {
        try {
            Libc.call(s -> (int) CLOSE.invokeExact(s, fd));
        } catch (SysException e) {
            // close(2) of a descriptor we own: nothing to do about a failure
        }
    }

    /**
     * A descriptor on file's inode that raises no fanotify events (FMODE_NONOTIFY), writable if
     * asked: the descriptor of an FAN_OPEN event of a notification group of its own, marked on
     * the inode just long enough to see one open (ours, through /proc/self/fd/N). Not to be
     * called on a thread that must answer this file's permission events (the open waits for them).
     * A writable one is a writer: it breaks read leases on the file once, as any open for writing.
     */
    public static FileHandle quietOpen(FileHandle file, boolean writable) throws SysException {
        String name = file.path() + " (quiet)";
        int g = init(name, FAN_CLASS_NOTIF | FAN_CLOEXEC, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        Fanotify group = new Fanotify(name, g, openEventFd(g, name));
        try {
            group.mark(file, FAN_OPEN);
            FileHandle.openRead(Path.of("/proc/self/fd/" + file.fd())).close();
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (System.nanoTime() < deadline) {
                List<Event> events = group.read(100);
                if (events == null) break;
                FileHandle quiet = null;
                for (Event e : events) {
                    if (e.file() == null) continue;
                    if (quiet == null) quiet = e.file();
                    else e.file().close();
                }
                if (quiet != null) return quiet;
            }
            throw new SysException("fanotify FAN_OPEN", name, Errno.EIO, "the open of the file raised no event in 5 s");
        } finally {
            group.close();
        }
    }

    private static int openEventFd(int g, String name) throws SysException {
        int w = (int) Libc.call(s -> (int) EVENTFD.invokeExact(s, 0, EFD_CLOEXEC));
        if (w < 0) {
            closeQuietly(g);
            throw new SysException("eventfd", name, -w, "too many open files? (ulimit -n)");
        }
        return w;
    }

    /**
     * Whether pre-content events work here: root, a kernel that knows FAN_PRE_ACCESS. Marks a
     * memfd to ask the kernel: EINVAL means it does not know the event; EOPNOTSUPP means it does
     * (shmem just refuses it, as tmpfs does). Whether a given file system allows it is known
     * when a file on it is marked.
     */
    public static Probe probe() {
        if (!Process.isRoot()) {
            return new Probe(false, "fanotify permission events need root (CAP_SYS_ADMIN): run as root");
        }
        try (Fanotify g = open("probe"); FileHandle m = Memfd.create("dmap-fanotify-probe", 0)) {
            try {
                g.mark(m, FAN_PRE_ACCESS);
            } catch (SysException e) {
                if (e.errno() != Errno.EOPNOTSUPP) return new Probe(false, e.getMessage());
            }
            return new Probe(true, "");
        } catch (SysException e) {
            return new Probe(false, e.getMessage());
        }
    }

    @Override
    public String toString() { return "fanotify group " + name; }
}
