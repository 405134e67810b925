package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * memfd_create(2) and ftruncate(2): memory with a file descriptor and no name in any file system,
 * which a software device exports as its "device file". Another process (or this one) reaches it
 * at /proc/PID/fd/N, mmaps it, and reads it with pread or io_uring like any file. Its pages are
 * freed when it is truncated to 0 ({@link #resize}), even while someone still maps it, or when the
 * last descriptor and mapping go. Follows memfd_create(2) and {@code <linux/memfd.h>}.
 */
public final class Memfd {
    /** MFD_CLOEXEC, {@code <linux/memfd.h>}: no child process inherits the descriptor. */
    private static final int MFD_CLOEXEC = 0x0001;
    /** memfd_create(2): "The name ... is limited to 249 bytes, excluding the terminating null byte." */
    public static final int MAX_NAME_BYTES = 249;

    // (MemorySegment state, const char* name, unsigned int flags)int
    private static final MethodHandle MEMFD_CREATE = Libc.errnoHandle("memfd_create",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    // (MemorySegment state, int fd, off_t length)int
    private static final MethodHandle FTRUNCATE = Libc.errnoHandle("ftruncate",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));

    private Memfd() {}

    /**
     * A new memfd called name (shown as /memfd:NAME in /proc/PID/fd), bytes long, read-write.
     * Its pages are allocated when first touched. Nothing is left open when it fails.
     */
    public static FileHandle create(String name, long bytes) throws SysException {
        int fd;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cName = arena.allocateFrom(name);
            fd = (int) Libc.check("memfd_create", name, createHint(name),
                    s -> (int) MEMFD_CREATE.invokeExact(s, cName, MFD_CLOEXEC));
        }
        FileHandle h = FileHandle.adopt("memfd:" + name, fd);
        try {
            resize(h, bytes);
            return h;
        } catch (SysException e) {
            try {
                h.close();
            } catch (SysException c) {
                e.addSuppressed(c);
            }
            throw e;
        }
    }

    /** ftruncate(2): sets the size; 0 frees every page, and a mapping of what is gone faults (SIGBUS). */
    public static void resize(FileHandle h, long bytes) throws SysException {
        Libc.check("ftruncate", h.path() + " to " + bytes + " bytes",
                "the memory could not be sized: check the memory limits (ulimit -v, the cgroup's memory.max)",
                s -> (int) FTRUNCATE.invokeExact(s, h.fd(), bytes));
    }

    private static String createHint(String name) {
        if (name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > MAX_NAME_BYTES) {
            return "the name is longer than " + MAX_NAME_BYTES + " bytes; give a shorter one";
        }
        return "a kernel without memfd (Linux 3.17 and later have it), or too many open files (ulimit -n)";
    }
}
