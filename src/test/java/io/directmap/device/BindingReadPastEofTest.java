package io.directmap.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.fs.FsStack;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.MapMode;
import io.directmap.mm.Vma;
import io.directmap.sys.Process;
import io.directmap.testing.Bytes;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A read that reaches the file's last page leaves in the destination what the CPU's mapping shows:
 * the file's bytes, then zeros to the end of that page, never what the destination held before.
 * Direct (O_DIRECT from the block device) and fallback (page-cache copy), on a loop-mounted ext4.
 */
class BindingReadPastEofTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    static final long PAGE = Process.PAGE_SIZE;
    static final long SIZE = 3 * PAGE + 1234;           // the last page holds 1234 bytes of file
    static final long MAPPED = 4 * PAGE;                // the binding ends at the end of that page
    static final byte STALE = (byte) 0xAA;

    FsStack mm;
    SoftwareDevice gpu;
    Path file;

    @BeforeEach
    void open() {
        mm = FsStack.open();
        gpu = SoftwareDevice.create("gpu0", mm.topology());
        file = EXT4.file("tail.bin");
    }

    @AfterEach
    void close() throws IOException {
        try {
            assertTrue(mm.fs().tracker().all().isEmpty(), "every mapping given back");
        } finally {
            gpu.close();
            mm.close();
            Files.deleteIfExists(file);
        }
    }

    /** dst holds the file from fileOffset, then zeros from EOF to the end of dst. */
    static void assertFileThenZeros(Path file, long fileOffset, MemorySegment dst) throws IOException {
        long fileBytes = Math.max(0, Math.min(SIZE - fileOffset, dst.byteSize()));
        Bytes.assertDeviceHoldsFile(file, fileOffset, dst.asSlice(0, fileBytes));
        for (long i = fileBytes; i < dst.byteSize(); i++) {
            byte b = dst.get(ValueLayout.JAVA_BYTE, i);
            if (b != 0) throw new AssertionError("byte " + (fileOffset + i) + " is past EOF (" + SIZE + ") and should be 0, is " + b);
        }
    }

    void readsAcrossEof(boolean direct) throws IOException {
        try (Vma vma = mm.mmap(file);
             Binding b = gpu.bind(vma, 0, MAPPED, 2 * PAGE, Set.of(), MapMode.MIXED);
             DeviceMemory.Buffer buf = gpu.allocate(file.toString(), MAPPED)) {
            MemorySegment dst = buf.segment();

            // The whole binding: the read's range crosses EOF.
            dst.fill(STALE);
            Binding.Read r = b.read(0, MAPPED, dst, n -> { });
            assertEquals(direct, r.directBytes() > 0, "went the expected way: " + r);
            assertFileThenZeros(file, 0, dst);

            // A read that ends at EOF, into a reused destination: the rest of the last page is zeros.
            dst.fill(STALE);
            b.read(2 * PAGE, SIZE - 2 * PAGE, dst, n -> { });
            assertFileThenZeros(file, 2 * PAGE, dst.asSlice(0, MAPPED - 2 * PAGE));
            assertEquals(STALE, dst.get(ValueLayout.JAVA_BYTE, MAPPED - 2 * PAGE), "nothing past the last page is written");

            // Past the last page nothing is mapped: refused.
            assertThrows(InvalidRequestException.class, () -> b.read(0, MAPPED + PAGE, dst, n -> { }));
        }
    }

    @Test
    void directReadAcrossEofZerosTheRestOfTheLastPage() throws IOException {
        Workloads.write(file, 0, SIZE, 41);
        Workloads.syncAndEvict(file);
        readsAcrossEof(true);
    }

    @Test
    void pageCacheReadAcrossEofZerosTheRestOfTheLastPage() throws IOException {
        Workloads.write(file, 0, SIZE, 42);   // dirty: always read through the page cache
        readsAcrossEof(false);
    }
}
