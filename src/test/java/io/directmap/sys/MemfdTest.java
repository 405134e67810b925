package io.directmap.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** memfd_create and ftruncate: memory with a descriptor, mapped, read back through another descriptor, freed. */
class MemfdTest {
    @Test
    void whatIsWrittenThroughTheMappingIsReadThroughTheDescriptorAndADeviceFile() throws Exception {
        int before = FileHandle.openCount();
        try (FileHandle fd = Memfd.create("memfd-test", 1 << 16); Arena arena = Arena.ofShared()) {
            assertEquals("memfd:memfd-test", fd.path());
            MemorySegment mem = Mmap.mapSharedWritable(fd, 1 << 16, arena);
            mem.fill((byte) 7);
            MemorySegment got = arena.allocate(1 << 16);
            assertEquals(1 << 16, fd.preadFully(got, 0));
            assertEquals(-1, mem.mismatch(got), "pread sees what the mapping wrote");

            Path node = Path.of("/proc/self/fd/" + fd.fd());
            assertTrue(Files.readSymbolicLink(node).toString().startsWith("/memfd:memfd-test"), Files.readSymbolicLink(node).toString());
            try (FileHandle other = FileHandle.openRead(node)) {
                MemorySegment again = arena.allocate(1 << 16);
                assertEquals(1 << 16, other.preadFully(again, 0));
                assertEquals(-1, mem.mismatch(again), "the device file reads the same memory");

                Memfd.resize(fd, 0);
                assertEquals(0, other.preadFully(again, 0), "truncated to 0: nothing is left to read, through any descriptor");
            }
        }
        assertEquals(before, FileHandle.openCount(), "every descriptor was closed");
    }

    @Test
    void aNameTooLongFailsWithTheCallTheNameAndWhatToDo() {
        String name = "x".repeat(Memfd.MAX_NAME_BYTES + 1);
        int before = FileHandle.openCount();
        SysException e = assertThrows(SysException.class, () -> Memfd.create(name, 4096));
        assertEquals("memfd_create", e.call());
        assertEquals(Errno.EINVAL, e.errno());
        assertTrue(e.getMessage().contains(name) && e.getMessage().contains("shorter"), e.getMessage());
        assertEquals(before, FileHandle.openCount());
    }
}
