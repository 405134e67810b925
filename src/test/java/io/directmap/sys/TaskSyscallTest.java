package io.directmap.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.sys.TaskSyscall.Access;
import io.directmap.sys.TaskSyscall.Arch;
import java.io.IOException;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Lines captured from /proc/TID/syscall of tasks blocked on fanotify events on this 6.18 kernel
 * (x86_64: a C probe and dd, truncate, fallocate), and aarch64 lines of the same calls written
 * from asm-generic/unistd.h's numbers; each parses to what the task does to the file.
 */
class TaskSyscallTest {
    static final long DEV = TaskSyscall.dev(7, 0), INO = 12;

    /** Descriptor 6 is our file, 7 another; 8 is ours opened O_RDONLY, 9 ours O_RDWR. */
    static final TaskSyscall.TaskView VIEW = new TaskSyscall.TaskView() {
        @Override public long[] identity(int fd) {
            return switch (fd) {
                case 6, 8, 9 -> new long[] {DEV, INO};
                case 7 -> new long[] {DEV, INO + 1};
                default -> null;
            };
        }

        @Override public long openFlags(int fd) {
            return Map.of(6, 02L, 8, 0100000L, 9, 0100002L).getOrDefault(fd, -1L);
        }

        @Override public long peekLong(long address) throws IOException {
            if (address == 0x7ffd0000L) return 0101;       // O_WRONLY | O_CREAT
            if (address == 0x7ffd0100L) return 0;          // O_RDONLY
            throw new IOException("no such address " + Long.toHexString(address));
        }
    };

    static Access x86(String line) { return TaskSyscall.parse(Arch.X86_64, line, DEV, INO, VIEW); }
    static Access arm(String line) { return TaskSyscall.parse(Arch.AARCH64, line, DEV, INO, VIEW); }

    @Test
    void opensSayWhetherTheyWriteOrTruncate() {
        assertEquals(new Access.Open(true, false), x86("257 0xffffff9c 0x7fffd8903aed 0x2 0x0 0x0 0x73 0x7fffd88fe9b0 0x7f2b95613011"));
        assertEquals(new Access.Open(false, false), x86("257 0xffffff9c 0x7fffd8903aed 0x8000 0x0 0x0 0x73 0x7fff 0x7f2b"));
        assertEquals(new Access.Open(true, true), x86("257 0xffffff9c 0x7fff 0x241 0x1b6 0x0 0x73 0x7fff 0x7f2b"));   // O_WRONLY|O_CREAT|O_TRUNC
        assertEquals(new Access.Open(true, true), x86("257 0xffffff9c 0x7fff 0x200 0x0 0x0 0x73 0x7fff 0x7f2b"));     // O_RDONLY|O_TRUNC truncates too
        assertEquals(new Access.Open(true, false), x86("2 0x7fff 0x1 0x0 0x0 0x0 0x0 0x7fff 0x7f2b"));                // open
        assertEquals(new Access.Open(true, true), x86("85 0x7fff 0x1a4 0x0 0x0 0x0 0x0 0x7fff 0x7f2b"));              // creat
        assertEquals(new Access.Open(true, false), x86("437 0xffffff9c 0x7fff 0x7ffd0000 0x18 0x0 0x0 0x7fff 0x7f2b")); // openat2
        assertEquals(new Access.Open(false, false), x86("437 0xffffff9c 0x7fff 0x7ffd0100 0x18 0x0 0x0 0x7fff 0x7f2b"));
        assertInstanceOf(Access.Unknown.class, x86("437 0xffffff9c 0x7fff 0x1234 0x18 0x0 0x0 0x7fff 0x7f2b"));
        assertEquals(new Access.Open(true, false), arm("56 0xffffff9c 0xffffd8903aed 0x2 0x0 0x0 0x0 0xffff 0xffff"));
        assertEquals(new Access.Open(true, false), arm("437 0xffffff9c 0xffff 0x7ffd0000 0x18 0x0 0x0 0xffff 0xffff"));
    }

    @Test
    void readsAndWritesAreToldApart() {
        assertEquals(new Access.Write("write"), x86("1 0x6 0x7fffd88fea40 0x1000 0x7f2b955344f0 0x0 0x73 0x7fffd88fea28 0x7f2b95613350"));
        assertEquals(new Access.Write("pwrite64"), x86("18 0x6 0x7fffd88fea40 0x64 0x2000 0x0 0x73 0x7fffd88fea28 0x7f2b95611483"));
        assertEquals(new Access.Read("pread64"), x86("17 0x6 0x7fffd88fea40 0x32 0xa 0x0 0x73 0x7fffd88fea28 0x7f2b956113d3"));
        assertEquals(new Access.Read("read"), x86("0 0x6 0x7fff 0x1000 0x0 0x0 0x0 0x7fff 0x7f2b"));
        assertEquals(new Access.Write("pwritev2"), x86("328 0x6 0x7fff 0x2 0x0 0x0 0x0 0x7fff 0x7f2b"));
        assertEquals(new Access.Write("write"), arm("64 0x6 0xffff 0x1000 0x0 0x0 0x0 0xffff 0xffff"));
        assertEquals(new Access.Read("pread64"), arm("67 0x6 0xffff 0x1000 0x0 0x0 0x0 0xffff 0xffff"));
        assertEquals(new Access.Write("pwrite64"), arm("68 0x6 0xffff 0x1000 0x0 0x0 0x0 0xffff 0xffff"));
    }

    @Test
    void copiesAskWhichDescriptorIsOurs() {
        // copy_file_range(fd_in 7, NULL, fd_out 6, &off, 200, 0): into our file, captured
        assertEquals(new Access.Write("copy_file_range"), x86("326 0x7 0x0 0x6 0x7ffccf372828 0xc8 0x0 0x7ffccf372718 0x7fcfa7192843"));
        assertEquals(new Access.Read("copy_file_range"), x86("326 0x6 0x0 0x7 0x7ffc 0xc8 0x0 0x7ffc 0x7fcf"));
        assertEquals(new Access.Write("copy_file_range"), x86("326 0x7 0x0 0x1f 0x7ffc 0xc8 0x0 0x7ffc 0x7fcf"), "unknown fd: assume ours");
        assertEquals(new Access.Read("sendfile"), x86("40 0x7 0x6 0x0 0x1000 0x0 0x0 0x7ffc 0x7fcf"));
        assertEquals(new Access.Write("sendfile"), x86("40 0x6 0x7 0x0 0x1000 0x0 0x0 0x7ffc 0x7fcf"));
        assertEquals(new Access.Write("splice"), arm("76 0x7 0x0 0x6 0x0 0x1000 0x0 0xffff 0xffff"));
        assertEquals(new Access.Write("copy_file_range"), arm("285 0x7 0x0 0x6 0xffff 0xc8 0x0 0xffff 0xffff"));
    }

    @Test
    void truncateFallocateAndMmap() {
        assertEquals(new Access.Truncate(5000), x86("77 0x6 0x1388 0x0 0x7f2b95529330 0x0 0x73 0x7fffd88fea28 0x7f2b9561b057"));
        assertEquals(new Access.Truncate(3000), x86("76 0x7fffd8903aed 0xbb8 0x0 0x7f2b9552a3b0 0x0 0x73 0x7fffd88fea28 0x7f2b9561b027"));
        assertEquals(new Access.Fallocate(3), x86("285 0x6 0x3 0x1000 0x1000 0x0 0x73 0x7fffd88fea28 0x7f2b95617dc3"));
        assertEquals(new Access.Fallocate(0x10), x86("285 0x6 0x10 0x0 0x1000 0x0 0x73 0x7fffd88fea28 0x7f2b95617dc3"));
        assertEquals(new Access.Truncate(16384), arm("46 0x6 0x4000 0x0 0x0 0x0 0x0 0xffff 0xffff"));
        assertEquals(new Access.Fallocate(3), arm("47 0x6 0x3 0x1000 0x1000 0x0 0x0 0xffff 0xffff"));
        // mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_SHARED, 6, 0), captured
        assertEquals(new Access.Mmap(true), x86("9 0x0 0x2000 0x3 0x1 0x6 0x0 0x7fffd88fea28 0x7f2b9561c9b3"));
        // MAP_PRIVATE PROT_READ, captured
        assertEquals(new Access.Mmap(false), x86("9 0x0 0x1000 0x1 0x2 0x6 0x1000 0x7fffd88fea28 0x7f2b9561c9b3"));
        // MAP_SHARED PROT_READ of an O_RDONLY descriptor: mprotect cannot add PROT_WRITE
        assertEquals(new Access.Mmap(false), x86("9 0x0 0x1000 0x1 0x1 0x8 0x0 0x7fff 0x7f2b"));
        // ... of an O_RDWR descriptor: it can, with no event
        assertEquals(new Access.Mmap(true), x86("9 0x0 0x1000 0x1 0x1 0x9 0x0 0x7fff 0x7f2b"));
        assertEquals(new Access.Mmap(true), x86("9 0x0 0x1000 0x1 0x3 0x1f 0x0 0x7fff 0x7f2b"), "MAP_SHARED_VALIDATE, unknown fd");
        assertEquals(new Access.Mmap(true), arm("222 0x0 0x2000 0x3 0x1 0x6 0x0 0xffff 0xffff"));
    }

    @Test
    void whatIsNotKnownIsUnknownWithTheReason() {
        assertTrue(why(x86("running")).contains("running"));
        assertTrue(why(x86("-1 0x7fffd88fea28 0x7f2b9561c9b3")).contains("page fault"));
        assertTrue(why(x86("426 0x5 0x1 0x0 0x0 0x0 0x8 0x7fff 0x7f2b")).contains("io_uring"));
        assertTrue(why(x86("999 0x5 0x1 0x0 0x0 0x0 0x8 0x7fff 0x7f2b")).contains("999"));
        assertTrue(why(x86("")).contains("empty"));
        assertTrue(why(x86("17 0x6")).contains("short"));
        assertTrue(why(x86("17 zz 0x1 0x0 0x0 0x0 0x8 0x7fff 0x7f2b")).contains("unreadable"));
        assertTrue(why(TaskSyscall.parse(Arch.OTHER, "64 0x6 0x1 0x0 0x0 0x0 0x8 0x7fff 0x7f2b", DEV, INO, VIEW))
                .contains("architecture"));
        // x86_64's write is aarch64's nothing-we-know... and aarch64's write (64) is not x86_64's
        assertInstanceOf(Access.Unknown.class, x86("64 0x6 0xffff 0x1000 0x0 0x0 0x0 0xffff 0xffff"));
    }

    @Test
    void aTaskThatIsGoneIsUnknown() {
        assertTrue(why(TaskSyscall.of(Integer.MAX_VALUE, DEV, INO)).contains("gone"));
    }

    @Test
    void devIsGlibcsMakedev() {
        assertEquals(0x0700L, TaskSyscall.dev(7, 0));
        assertEquals(0x10300L + 0x5L, TaskSyscall.dev(259, 5));
        assertEquals((1L << 44) | (1L << 20), TaskSyscall.dev(0x1000, 0x100));
    }

    static String why(Access a) {
        return assertInstanceOf(Access.Unknown.class, a).why();
    }

    @Test
    void aTaskSeenRunningOnItsWayIntoTheEventsSleepIsReadAgainUntilBlocked() throws IOException {
        // The reader can see a permission event before its task went to sleep on it: /proc says
        // "running" for a moment. Taken at once, a pread became an unknown change of its range.
        java.util.Iterator<String> lines = java.util.List.of("running", "running", "17 0x43 0x7f0000 0x10000 0x0 0x0 0x0 0x7f1 0x7f2").iterator();
        String line = TaskSyscall.blocked(lines::next, TaskSyscall.RUNNING_TRIES);
        assertEquals("17 0x43 0x7f0000 0x10000 0x0 0x0 0x0 0x7f1 0x7f2", line);
        assertInstanceOf(Access.Read.class, TaskSyscall.parse(Arch.X86_64, line, 1, 2, null));
    }

    @Test
    void aTaskRunningThroughEveryTryStaysUnknown() throws IOException {
        int[] reads = {0};
        String line = TaskSyscall.blocked(() -> {
            reads[0]++;
            return "running";
        }, 60);
        assertEquals(60, reads[0]);
        assertTrue(why(TaskSyscall.parse(Arch.X86_64, line, 1, 2, null)).contains("running"));
    }
}
