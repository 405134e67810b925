package io.directmap.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.fs.FsStack;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.MapMode;
import io.directmap.mm.Vma;
import io.directmap.sys.Process;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The number of windows a binding makes is bounded, and a window size the engine cannot use is
 * refused: with a message that names the range, the window, the count it would need and the
 * smallest window allowed (dmap watch with such a window: WatchWindowTest, with the command tests).
 */
class BindingWindowsTest {
    static final long GiB = 1L << 30;

    @TempDir Path dir;
    FsStack mm;
    SoftwareDevice gpu;
    Path big;

    @BeforeEach
    void open() throws IOException {
        mm = FsStack.open();
        gpu = SoftwareDevice.create("gpu0", mm.topology());
        big = dir.resolve("big.bin");
        try (RandomAccessFile f = new RandomAccessFile(big.toFile(), "rw")) {
            f.setLength(4 * GiB);   // sparse: nothing is written, nothing is read
        }
    }

    @AfterEach
    void close() throws IOException {
        gpu.close();
        mm.close();
    }

    @Test
    void tooManyWindowsIsRefusedWithTheSmallestWindowAllowed() throws IOException {
        try (Vma vma = mm.mmap(big)) {
            String m = assertThrows(InvalidRequestException.class,
                    () -> gpu.bind(vma, 0, 4 * GiB, 4096, Set.of(), MapMode.MIXED)).getMessage();
            assertTrue(m.contains(big.toString()), m);
            assertTrue(m.contains("[0 B, 4 GiB)"), "names the range: " + m);
            assertTrue(m.contains("windows of 4 KiB"), "names the window: " + m);
            assertTrue(m.contains("1048576 windows"), "names the count it would need: " + m);
            assertTrue(m.contains("16384"), "names the limit: " + m);
            assertTrue(m.contains("at least 256 KiB"), "names the smallest window allowed: " + m);
            assertEquals(0, vma.liveDeviceMappings());
        }
    }

    @Test
    void theSmallestWindowAllowedIsAccepted() throws IOException {
        long smallest = Binding.smallestWindow(4 * GiB);
        assertEquals(256 << 10, smallest);
        try (Vma vma = mm.mmap(big)) {
            assertThrows(InvalidRequestException.class,
                    () -> gpu.bind(vma, 0, 4 * GiB, smallest - Process.PAGE_SIZE, Set.of(), MapMode.MIXED));
            // Making (and closing) the largest binding allowed stays cheap.
            assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
                try (Binding b = gpu.bind(vma, 0, 4 * GiB, smallest, Set.of(), MapMode.MIXED)) {
                    assertTrue(b.liveMappings().isEmpty());
                }
            });
        }
    }

    @Test
    void smallestWindowIsAPageMultipleThatFits() {
        long page = Process.PAGE_SIZE;
        for (long range : new long[] {1, page, 16_384 * page, 16_384 * page + 1, 3 * GiB + 12_345, 1L << 50}) {
            long w = Binding.smallestWindow(range);
            assertEquals(0, w % page, range + " -> " + w);
            assertTrue(Math.ceilDiv(range, w) <= Binding.MAX_WINDOWS, range + " -> " + w);
            assertTrue(w == page || Math.ceilDiv(range, w - page) > Binding.MAX_WINDOWS, "smallest: " + range + " -> " + w);
        }
    }

    @Test
    void windowThatIsNotAPositivePageMultipleIsRefused() throws IOException {
        Path small = dir.resolve("small.bin");
        Workloads.write(small, 0, 1 << 20, 31);
        try (Vma vma = mm.mmap(small)) {
            for (long w : new long[] {0, -4096, 1000, 4097}) {
                String m = assertThrows(InvalidRequestException.class,
                        () -> gpu.bind(vma, 0, 1 << 20, w, Set.of(), MapMode.MIXED)).getMessage();
                assertTrue(m.contains(small.toString()) && m.contains(w + " bytes") && m.contains("multiple of the page size"), m);
            }
        }
    }
}
