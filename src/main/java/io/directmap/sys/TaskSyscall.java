package io.directmap.sys;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Locale;

/**
 * What a task blocked on a fanotify permission event is doing to the file: the system call it
 * is in, read from /proc/TID/syscall (proc(5): "NR arg0 .. arg5 sp pc", arguments in hex), and
 * where that is not enough /proc/TID/fd/N (which descriptor is ours), /proc/TID/fdinfo/N (the
 * descriptor's open flags) and /proc/TID/mem (openat2's struct open_how).
 *
 * <p>Why: FAN_PRE_ACCESS does not say the direction. Measured on 6.18 (kernel-facts, see
 * {@link Fanotify}): reads, writes, truncate, fallocate and mmap all arrive as FAN_PRE_ACCESS with
 * a page-rounded range; truncate gives only the page of the new size. The blocked task's system
 * call tells them apart. Root may read another task's syscall and mem files.
 *
 * <p>Anything not recognised is {@link Access.Unknown}, and the caller treats it as a possible
 * change of the event's range: io_uring (the work is in the ring, not the arguments; measured
 * with fio: the event comes from the submitter in io_uring_enter, and the ring's fdinfo already
 * lists no pending SQE, so an io_uring read looks like a write), a task not
 * in a system call (running, or "-1": a page fault), a task gone, an architecture other than
 * x86_64 and aarch64.
 *
 * <p>Parsing ({@link #parse}) is separate from reading /proc ({@link #of}), so tests feed it
 * captured lines and a {@link TaskView} of their own.
 */
public final class TaskSyscall {
    // <asm-generic/fcntl.h> (same on x86_64 and aarch64 for these)
    private static final long O_ACCMODE = 03, O_RDONLY = 0, O_WRONLY = 01, O_CREAT = 0100, O_TRUNC = 01000;
    // <asm-generic/mman-common.h>, <linux/mman.h>
    private static final long PROT_WRITE = 0x2, MAP_TYPE = 0x0f, MAP_SHARED = 0x01, MAP_SHARED_VALIDATE = 0x03;

    /** What the task does to the file, as far as its system call says. */
    public sealed interface Access {
        /** open, openat, openat2, creat, open_by_handle_at: for writing (or O_TRUNC), truncating. */
        record Open(boolean forWrite, boolean truncates) implements Access {}
        /** read, pread64, readv, preadv(2), readahead; copy_file_range/sendfile/splice from our file. */
        record Read(String call) implements Access {}
        /** write, pwrite64, writev, pwritev(2); copy_file_range/sendfile/splice into our file. */
        record Write(String call) implements Access {}
        /** truncate, ftruncate to size. */
        record Truncate(long size) implements Access {}
        /** fallocate with mode (FALLOC_FL_* of &lt;linux/falloc.h&gt;). */
        record Fallocate(int mode) implements Access {}
        /**
         * mmap; sharedWritable when MAP_SHARED and either PROT_WRITE or a descriptor opened for
         * writing (mprotect can add PROT_WRITE later without any event).
         */
        record Mmap(boolean sharedWritable) implements Access {}
        /** Not known: the caller assumes the event's range may change. */
        record Unknown(String why) implements Access {}
    }

    /** The architectures whose system call numbers we know. */
    public enum Arch {
        X86_64, AARCH64, OTHER;

        /** This JVM's. */
        public static Arch current() {
            return switch (System.getProperty("os.arch", "").toLowerCase(Locale.ROOT)) {
                case "amd64", "x86_64" -> X86_64;
                case "aarch64", "arm64" -> AARCH64;
                default -> OTHER;
            };
        }
    }

    /** What parse may ask about the task besides its syscall line; {@link #of} reads /proc. */
    public interface TaskView {
        /** (dev, ino) of the task's descriptor fd (dev as glibc's makedev), or null when unknown. */
        long[] identity(int fd);

        /** The open flags of the task's descriptor fd (fdinfo "flags:"), or -1 when unknown. */
        long openFlags(int fd);

        /** 8 bytes of the task's memory at address, or throws when it cannot be read. */
        long peekLong(long address) throws IOException;
    }

    private TaskSyscall() {}

    /**
     * What thread tid is doing to the file (dev, ino), read from /proc now. dev is glibc's
     * makedev(major, minor) ({@link #dev}).
     */
    public static Access of(int tid, long dev, long ino) {
        Path task = Path.of("/proc", Integer.toString(tid));
        String line;
        try {
            line = blocked(() -> readProc("/proc/" + tid + "/syscall").trim(), RUNNING_TRIES);
        } catch (NoSuchFileException e) {
            return new Access.Unknown("task " + tid + " is gone");
        } catch (IOException e) {
            return new Access.Unknown("cannot read /proc/" + tid + "/syscall: " + e.getMessage());
        }
        return parse(Arch.current(), line, dev, ino, new ProcView(task));
    }

    /** A thread's buffer for {@link #readProc}: /proc text files of a task fit in one page or two. */
    private static final ThreadLocal<byte[]> PROC_BUFFER = ThreadLocal.withInitial(() -> new byte[8192]);

    /**
     * The text of a small /proc file, read with as few read(2) calls as it takes (usually one)
     * into a buffer the calling thread reuses; ASCII (what /proc's status, syscall, comm and
     * fdinfo files hold). Throws NoSuchFileException when the task is gone.
     */
    public static String readProc(String path) throws IOException {
        byte[] buf = PROC_BUFFER.get();
        int n = 0;
        try (FileInputStream in = new FileInputStream(path)) {
            for (int r; (r = in.read(buf, n, buf.length - n)) > 0; ) {
                n += r;
                if (n == buf.length) {
                    buf = java.util.Arrays.copyOf(buf, buf.length * 2);
                    PROC_BUFFER.set(buf);
                }
            }
        } catch (java.io.FileNotFoundException e) {
            throw new NoSuchFileException(path, null, e.getMessage());
        }
        return new String(buf, 0, n, java.nio.charset.StandardCharsets.ISO_8859_1);
    }

    /** How often /proc/TID/syscall is read again while it says "running" (about 1 ms apart at most). */
    static final int RUNNING_TRIES = 200;

    /** Reads /proc/TID/syscall. */
    @FunctionalInterface
    interface LineSource {
        String read() throws IOException;
    }

    /**
     * The task's syscall line once it is blocked. A task that raised a permission event queues it and
     * only then goes to sleep waiting for the answer, so the reader can see the event while the task
     * is still "running" on its way into that sleep: /proc/TID/syscall then says "running". It cannot
     * leave the system call before it is answered, so reading again soon finds it blocked (a serve
     * thread's own pread was otherwise taken for an unknown change of its range, and the change's
     * invalidation waited for that very read). After tries, the last line read.
     */
    static String blocked(LineSource source, int tries) throws IOException {
        String line = source.read();
        for (int i = 1; i < tries && line.startsWith("running"); i++) {
            if (i < 20) Thread.onSpinWait();
            else Thread.yield();
            if (i >= 50) {
                try {
                    Thread.sleep(0, 500_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return line;
                }
            }
            line = source.read();
        }
        return line;
    }

    /** glibc's makedev(major, minor): the st_dev that stat(2) and /proc report. */
    public static long dev(int major, int minor) {
        long ma = Integer.toUnsignedLong(major), mi = Integer.toUnsignedLong(minor);
        return ((ma & 0xfffff000L) << 32) | ((ma & 0xfffL) << 8) | ((mi & 0xffffff00L) << 12) | (mi & 0xffL);
    }

    /**
     * Parses one /proc/TID/syscall line of a task blocked on an event of file (dev, ino) on arch.
     */
    public static Access parse(Arch arch, String line, long dev, long ino, TaskView task) {
        String[] f = line.trim().split("\\s+");
        if (f.length == 0 || f[0].isEmpty()) return new Access.Unknown("empty syscall line");
        if (f[0].equals("running")) return new Access.Unknown("the task is running, not blocked in a system call");
        long nr;
        try {
            nr = Long.parseLong(f[0]);
        } catch (NumberFormatException e) {
            return new Access.Unknown("unreadable syscall line '" + line + "'");
        }
        if (nr < 0) return new Access.Unknown("blocked outside a system call (a page fault or a signal)");
        if (f.length < 7) return new Access.Unknown("short syscall line '" + line + "'");
        long[] a = new long[6];
        try {
            for (int i = 0; i < 6; i++) a[i] = Long.parseUnsignedLong(f[i + 1].replaceFirst("^0x", ""), 16);
        } catch (NumberFormatException e) {
            return new Access.Unknown("unreadable syscall arguments '" + line + "'");
        }
        Call call = Call.of(arch, nr);
        return switch (call) {
            case OPEN -> open(a[1]);
            case OPENAT -> open(a[2]);
            case CREAT -> open(O_CREAT | O_WRONLY | O_TRUNC);
            case OPEN_BY_HANDLE_AT -> open(a[2]);
            case OPENAT2 -> {
                try {
                    yield open(task.peekLong(a[2]));     // struct open_how { u64 flags; u64 mode; u64 resolve; }
                } catch (IOException e) {
                    yield new Access.Unknown("openat2: cannot read its open_how: " + e.getMessage());
                }
            }
            case READ, PREAD64, READV, PREADV, PREADV2, READAHEAD, FADVISE64 -> new Access.Read(call.label);
            case WRITE, PWRITE64, WRITEV, PWRITEV, PWRITEV2 -> new Access.Write(call.label);
            // (fd_in, off_in*, fd_out, off_out*, len, flags); splice has the same order
            case COPY_FILE_RANGE, SPLICE -> ours((int) a[2], dev, ino, task)
                    ? new Access.Write(call.label) : new Access.Read(call.label);
            // sendfile(out_fd, in_fd, off*, count)
            case SENDFILE -> ours((int) a[0], dev, ino, task) ? new Access.Write(call.label) : new Access.Read(call.label);
            case TRUNCATE, FTRUNCATE -> new Access.Truncate(a[1]);
            case FALLOCATE -> new Access.Fallocate((int) a[1]);
            case MMAP -> new Access.Mmap(sharedWritable(a[2], a[3], (int) a[4], task));
            case IO_URING_ENTER -> new Access.Unknown("io_uring_enter: the operation is in the ring, not the arguments");
            case NONE -> new Access.Unknown((arch == Arch.OTHER ? "unknown architecture " + System.getProperty("os.arch")
                    + ": " : "") + "system call " + nr + " is not one we know");
        };
    }

    private static Access open(long flags) {
        boolean truncates = (flags & O_TRUNC) != 0;
        return new Access.Open((flags & O_ACCMODE) != O_RDONLY || truncates, truncates);
    }

    private static boolean ours(int fd, long dev, long ino, TaskView task) {
        long[] id = task.identity(fd);
        return id == null || (id[0] == dev && id[1] == ino);   // unknown: assume it writes to ours
    }

    private static boolean sharedWritable(long prot, long flags, int fd, TaskView task) {
        long type = flags & MAP_TYPE;
        if (type != MAP_SHARED && type != MAP_SHARED_VALIDATE) return false;
        if ((prot & PROT_WRITE) != 0) return true;
        long open = task.openFlags(fd);
        return open < 0 || (open & O_ACCMODE) != O_RDONLY;
    }

    /** The calls we tell apart, and their numbers (x86_64: arch/x86/entry/syscalls/syscall_64.tbl; aarch64: asm-generic/unistd.h). */
    enum Call {
        OPEN("open", 2, -1), OPENAT("openat", 257, 56), OPENAT2("openat2", 437, 437), CREAT("creat", 85, -1),
        OPEN_BY_HANDLE_AT("open_by_handle_at", 304, 265),
        READ("read", 0, 63), PREAD64("pread64", 17, 67), READV("readv", 19, 65), PREADV("preadv", 295, 69),
        PREADV2("preadv2", 327, 286), READAHEAD("readahead", 187, 213), FADVISE64("fadvise64", 221, 223),
        WRITE("write", 1, 64), PWRITE64("pwrite64", 18, 68), WRITEV("writev", 20, 66), PWRITEV("pwritev", 296, 70),
        PWRITEV2("pwritev2", 328, 287),
        COPY_FILE_RANGE("copy_file_range", 326, 285), SPLICE("splice", 275, 76), SENDFILE("sendfile", 40, 71),
        TRUNCATE("truncate", 76, 45), FTRUNCATE("ftruncate", 77, 46), FALLOCATE("fallocate", 285, 47),
        MMAP("mmap", 9, 222), IO_URING_ENTER("io_uring_enter", 426, 426),
        NONE("?", -1, -1);

        final String label;
        final int x86_64, aarch64;

        Call(String label, int x86_64, int aarch64) {
            this.label = label;
            this.x86_64 = x86_64;
            this.aarch64 = aarch64;
        }

        static Call of(Arch arch, long nr) {
            for (Call c : values()) {
                int n = switch (arch) {
                    case X86_64 -> c.x86_64;
                    case AARCH64 -> c.aarch64;
                    case OTHER -> -1;
                };
                if (n >= 0 && n == nr) return c;
            }
            return NONE;
        }
    }

    /** The name of system call nr on arch ("pwrite64"), or "syscall NR". */
    public static String name(Arch arch, long nr) {
        Call c = Call.of(arch, nr);
        return c == Call.NONE ? "syscall " + nr : c.label;
    }

    /** /proc/TID as a TaskView. */
    private record ProcView(Path task) implements TaskView {
        @Override
        public long[] identity(int fd) {
            try {
                Statx.Info st = Statx.of(task.resolve("fd").resolve(Integer.toString(fd)));
                return new long[] {dev(st.devMajor(), st.devMinor()), st.inode()};
            } catch (SysException e) {
                return null;
            }
        }

        @Override
        public long openFlags(int fd) {
            try {
                String text = readProc(task.resolve("fdinfo").resolve(Integer.toString(fd)).toString());
                for (String l : text.split("\n")) {
                    if (l.startsWith("flags:")) return Long.parseLong(l.substring(6).trim(), 8);
                }
            } catch (IOException | NumberFormatException e) {
                // unknown
            }
            return -1;
        }

        @Override
        public long peekLong(long address) throws IOException {
            try (RandomAccessFile mem = new RandomAccessFile(task.resolve("mem").toFile(), "r")) {
                mem.seek(address);
                return Long.reverseBytes(mem.readLong());      // little-endian on x86_64 and aarch64
            }
        }
    }
}
