package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import io.directmap.mm.Vma;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Closing the stack lets go of everything whatever one step throws: a vma whose notifier does not
 * let go at munmap (fault point munmap_error) fails the close, and the vmas after it are unmapped
 * all the same, and the file system and block layers are closed after them.
 */
class FsStackCloseTest {
    @TempDir Path dir;

    @Test
    void aMunmapThatThrowsLeavesNoOtherVmaMapped() throws IOException {
        Path a = Files.write(dir.resolve("a.bin"), new byte[8192]), b = Files.write(dir.resolve("b.bin"), new byte[8192]);
        FsStack stack = FsStack.open();
        Vma va = stack.mmap(a), vb = stack.mmap(b);
        va.insertNotifier(0, 8192, (n, inv) -> { });
        vb.insertNotifier(0, 8192, (n, inv) -> { });
        try (var _ = Faults.enable(FaultPoint.MUNMAP_ERROR, 1.0, 1)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, stack::close);
            assertTrue(e.getMessage().contains("munmap_error"), e.getMessage());
        }
        assertTrue(va.isClosed(), "the vma whose notifier threw is unmapped");
        assertTrue(vb.isClosed(), "the vma after it is unmapped too");
        assertTrue(stack.fs().tracker().all().isEmpty(), "no mapping is tracked");
    }
}
