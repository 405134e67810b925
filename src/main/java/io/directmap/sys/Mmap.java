package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * mmap(2), madvise(2) and munmap(2) of a file opened through {@link FileHandle}: the CPU's view of
 * its pages, through the page cache, with an explicit lifetime (the arena's).
 */
public final class Mmap {
    private static final int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1;
    private static final int MADV_DONTNEED = 4;

    // (state, void*, size_t, int, int, int, off_t)void*
    private static final MethodHandle MMAP = Libc.errnoHandle("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    // (state, void*, size_t, int)int
    private static final MethodHandle MADVISE = Libc.errnoHandle("madvise",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    // (void*, size_t)int
    private static final MethodHandle MUNMAP = Libc.plainHandle("munmap",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));

    private Mmap() {}

    /**
     * mmap(PROT_READ, MAP_SHARED) of the first length bytes of file. The mapping lives until the
     * arena closes; touching it faults pages in through the page cache, as a CPU access would.
     */
    @SuppressWarnings("restricted")   // sys is where restricted FFM calls live: -Werror fails one anywhere else
    public static MemorySegment mapShared(FileHandle file, long length, Arena arena) throws SysException {
        // MAP_FAILED is (void*)-1; no user-space address is negative as a long.
        long addr = Libc.check("mmap", file.path() + " 0+" + length, "", s -> ((MemorySegment) MMAP.invokeExact(s,
                MemorySegment.NULL, length, PROT_READ, MAP_SHARED, file.fd(), 0L)).address());
        return MemorySegment.ofAddress(addr).reinterpret(length, arena, Mmap::unmap);
    }

    /**
     * mmap(PROT_READ | PROT_WRITE, MAP_SHARED) of the first length bytes of file (opened for reading
     * and writing: a memfd): what the process writes there is what every other mapping and every
     * read of the file sees. The mapping lives until the arena closes.
     */
    @SuppressWarnings("restricted")   // sys is where restricted FFM calls live: -Werror fails one anywhere else
    public static MemorySegment mapSharedWritable(FileHandle file, long length, Arena arena) throws SysException {
        long addr = Libc.check("mmap PROT_WRITE", file.path() + " 0+" + length, "", s -> ((MemorySegment) MMAP.invokeExact(s,
                MemorySegment.NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd(), 0L)).address());
        return MemorySegment.ofAddress(addr).reinterpret(length, arena, Mmap::unmap);
    }

    /**
     * madvise(MADV_DONTNEED) on pages of a shared file mapping: drops this process's page-table
     * entries, not the data; the page cache keeps the pages, and posix_fadvise can evict them after.
     */
    public static void dropMappedPages(MemorySegment mapped) throws SysException {
        Libc.check("madvise MADV_DONTNEED", mapped.toString(), "",
                s -> (int) MADVISE.invokeExact(s, mapped, mapped.byteSize(), MADV_DONTNEED));
    }

    private static void unmap(MemorySegment s) {
        try {
            int rc = (int) MUNMAP.invokeExact(s, s.byteSize());
            assert rc == 0;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }
}
