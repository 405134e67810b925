package io.directmap.mm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.DeviceAccess;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.sys.FileHandle;
import io.directmap.testing.Bytes;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad input gets a message that names the file and says what to do; nothing leaks. */
class BadInputTest {
    @TempDir Path dir;
    FsStack mm;
    SoftwareDevice gpu;
    int handlesBefore;
    long fdsBefore;

    @BeforeEach
    void open() throws IOException {
        // The lease thread's signalfd and eventfd live as long as the process: start it before counting.
        io.directmap.sys.Leases.shared();
        handlesBefore = FileHandle.openCount();
        fdsBefore = openFds();
        mm = FsStack.open();
        gpu = SoftwareDevice.create("gpu0", mm.topology());
    }

    @AfterEach
    void noLeaks() throws IOException {
        gpu.close();
        mm.close();
        assertEquals(handlesBefore, FileHandle.openCount(), "every FileHandle opened was closed");
        assertTrue(openFds() <= fdsBefore, "no descriptor leaked: " + fdsBefore + " before, " + openFds() + " after");
    }

    static long openFds() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    private String refused(Path p) {
        return assertThrows(InvalidRequestException.class, () -> mm.mmap(p)).getMessage();
    }

    @Test
    void missingFile() {
        Path p = dir.resolve("nope.bin");
        String m = refused(p);
        assertTrue(m.contains(p.toString()) && m.contains("no such file"), m);
    }

    @Test
    void directory() {
        String m = refused(dir);
        assertTrue(m.contains(dir.toString()) && m.contains("is a directory"), m);
    }

    @Test
    void emptyFile() throws IOException {
        Path p = Files.createFile(dir.resolve("empty.bin"));
        String m = refused(p);
        assertTrue(m.contains("empty") && m.contains(p.toString()), m);
    }

    @Test
    void badRanges() throws IOException {
        Path p = dir.resolve("data.bin");
        Workloads.write(p, 0, 10_000, 1);
        try (Vma vma = mm.mmap(p)) {
            String past = assertThrows(InvalidRequestException.class, () -> gpu.access(vma, 0, 10_001)).getMessage();
            assertTrue(past.contains("past the end") && past.contains("10000") && past.contains(p.toString()), past);
            String reversed = assertThrows(InvalidRequestException.class, () -> gpu.access(vma, 5000, 100)).getMessage();
            assertTrue(reversed.contains("START < END"), reversed);
            assertThrows(InvalidRequestException.class, () -> gpu.access(vma, 100, 100));
            String negative = assertThrows(InvalidRequestException.class, () -> gpu.access(vma, -4096, 100)).getMessage();
            assertTrue(negative.contains("negative"), negative);
            assertThrows(InvalidRequestException.class, () -> gpu.access(vma, Long.MAX_VALUE - 1, Long.MAX_VALUE));
            assertThrows(InvalidRequestException.class, () -> gpu.access(vma, 0, Long.MIN_VALUE));
            try (SoftwareDevice fresh = SoftwareDevice.create("gpu9", mm.topology())) {
                assertEquals(fresh.memoryFree(), gpu.memoryFree(), "refused requests gave back their device memory");
            }
        }
    }

    @Test
    void rangeLargerThanDeviceMemory() throws IOException {
        Path p = dir.resolve("big.bin");
        Workloads.write(p, 0, 3 << 20, 2);
        try (SoftwareDevice small = SoftwareDevice.create("fpga7", io.directmap.device.Profile.FPGA, 1 << 20, mm.topology());
             Vma vma = mm.mmap(p)) {
            String m = assertThrows(InvalidRequestException.class, () -> small.access(vma, 0, 3 << 20)).getMessage();
            assertTrue(m.contains("does not fit") && m.contains("fpga7"), m);
        }
    }

    @Test
    void fileDeletedWhileMappedStillReadsItsBytes() throws IOException {
        Path p = dir.resolve("doomed.bin");
        Workloads.write(p, 0, 2 << 20, 3);
        byte[] before = Workloads.read(p, 0, 2 << 20);
        try (Vma vma = mm.mmap(p)) {
            Files.delete(p);
            try (DeviceAccess a = gpu.access(vma, 0, 2 << 20)) {
                assertEquals(-1, java.lang.foreign.MemorySegment.mismatch(a.memory(), 0, 2 << 20,
                        java.lang.foreign.MemorySegment.ofArray(before), 0, before.length), "the device got the deleted file's bytes");
            }
        }
    }

    @Test
    void accessAfterMunmapIsAnError() throws IOException {
        Path p = dir.resolve("gone.bin");
        Workloads.write(p, 0, 8192, 4);
        Vma vma = mm.mmap(p);
        vma.close();
        assertThrows(IllegalStateException.class, () -> gpu.access(vma, 0, 8192));
    }

    @Test
    void byteExactOnAnOddSizedFile() throws IOException {
        Path p = dir.resolve("odd.bin");
        Workloads.write(p, 0, 12_345, 5);
        try (Vma vma = mm.mmap(p); DeviceAccess a = gpu.access(vma, 3, 12_345)) {
            Bytes.assertDeviceHoldsFile(p, 3, a.memory());
        }
    }
}
