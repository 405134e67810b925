package io.directmap.coherence;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.lang.Xorshift;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.Segment;
import io.directmap.mm.Vma;
import io.directmap.pci.Topology;
import io.directmap.fs.Policy;
import io.directmap.sys.FileHandle;
import io.directmap.sys.PageCacheAdvice;
import io.directmap.testing.ChildWriter;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The WRITE torture: two devices write stamped blocks of one file, round after round, some
 * windows direct and some refused (holes, pages that the readers cached, pages still dirty from a
 * fallback write), while other processes read blocks through the file system between mappings
 * and while a mapping is live (their open waits for the device to let go). Every read sees the
 * block's last write; afterwards every block holds its last write, read back uncached; and the
 * file system's own checker, run after unmounting, finds nothing.
 */
abstract class WriteTortureTest {
    static final int BLOCK = 256 << 10, BLOCKS = 48, ROUNDS = 60;

    abstract ScratchFilesystem.Type type();

    /** Whether the devices may write this file system's blocks at all (btrfs: never). */
    boolean directWrites() { return true; }

    @TempDir Path out;

    @Test
    void everyBlockHoldsItsLastWriteAndTheCheckerFindsNothing() throws Exception {
        ScratchFs.requireRootFixtures(type());
        try (ScratchFilesystem fs = ScratchFilesystem.create(type(), 320L << 20, false, List.of())) {
            Path file = fs.mountPoint().resolve("torture-write.bin");
            long[] seeds = new long[BLOCKS];
            for (int j = 0; j < BLOCKS; j++) seeds[j] = 1_000_000 + j;
            for (int j = 0; j < BLOCKS; j++) Workloads.write(file, (long) j * BLOCK, BLOCK, seeds[j]);
            for (int hole : new int[] {5, 17, 30}) {
                Commands.run("fallocate", "-p", "-o", Long.toString((long) hole * BLOCK), "-l", Integer.toString(BLOCK), file.toString());
                seeds[hole] = -1;                       // reads as zeros
            }
            Workloads.syncAndEvict(file);
            long direct = 0, fallback = 0;
            int readsWhileMapped = 0;
            Xorshift random = Xorshift.seeded(20261125);
            try (FsStack mm = FsStack.open(Topology.defaults(), Policy.defaults());
                 SoftwareDevice gpu = SoftwareDevice.create("gpu0", mm.topology());
                 SoftwareDevice nic = SoftwareDevice.create("nic0", mm.topology())) {
                for (int round = 0; round < ROUNDS; round++) {
                    SoftwareDevice dev = round % 2 == 0 ? gpu : nic;
                    // The first round writes a hole's neighbours with it: one write, some windows direct, one refused.
                    int first = round == 0 ? 4 : random.nextInt(BLOCKS);
                    int count = round == 0 ? 3 : Math.min(BLOCKS - first, 1 + random.nextInt(3));
                    long start = (long) first * BLOCK, end = start + (long) count * BLOCK;
                    try (DeviceMemory.Buffer src = dev.allocate("torture round " + round, end - start);
                         Vma vma = mm.mmapForWrite(file);
                         Binding b = dev.bind(vma, start, end, BLOCK, Set.of(MapFlag.WRITE), MapMode.MIXED)) {
                        for (int j = first; j < first + count; j++) {
                            seeds[j] = (long) round * 1000 + j;
                            Xorshift.seeded(seeds[j]).fill(src.segment().asSlice((long) (j - first) * BLOCK, BLOCK));
                        }
                        Binding.Write w = b.write(start, src.segment().asSlice(0, end - start), round % 7 == 0, n -> { });
                        direct += w.directBytes();
                        fallback += w.fallbackBytes();
                        for (Segment s : w.segments()) assertTrue(s.start() >= start && s.end() <= end, s.toString());
                        if (round % 3 == 1) {
                            // A reader opens the file while the WRITE mapping is live: its open waits for the device.
                            assertEquals(1, ChildWriter.leasesOn(file).size(), "a live WRITE mapping holds a write lease");
                            int j = first + random.nextInt(count);
                            checkRead(file, j, seeds[j]);
                            readsWhileMapped++;
                        }
                    }
                    if (round % 3 == 0) {
                        int j = random.nextInt(BLOCKS);
                        checkRead(file, j, seeds[j]);
                    }
                    if (round % 10 == 9) Workloads.syncAndEvict(file);
                }
                assertEquals(List.of(), mm.fs().tracker().all(), "every mapping was let go");
            }
            assertEquals(List.of(), ChildWriter.leasesOn(file), "no lease is left on the file");
            assertTrue(readsWhileMapped > 0);
            if (directWrites()) assertTrue(direct > 0, "some windows went direct");
            else assertEquals(0, direct, "no window goes direct on " + type());
            assertTrue(fallback > 0, "some windows were refused and written through the file system");
            byte[] now = uncached(file);
            for (int j = 0; j < BLOCKS; j++) {
                assertArrayEquals(expected(seeds[j]), Arrays.copyOfRange(now, j * BLOCK, (j + 1) * BLOCK),
                        "block " + j + " holds its last write");
            }
            Files.delete(file);
            String report = fs.unmountAndCheck();   // throws with the checker's output when it found anything
            assertTrue(report != null);
        }
    }

    /** Another process (dd) reads block j through the file system; it must hold the block's last write. */
    private void checkRead(Path file, int j, long seed) throws Exception {
        Path got = out.resolve("block-" + j + ".bin");
        Process reader = new ProcessBuilder(List.of("dd", "if=" + file, "of=" + got, "bs=" + BLOCK, "skip=" + j, "count=1",
                "status=none")).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            assertTrue(reader.waitFor(60, TimeUnit.SECONDS), "the reader of block " + j + " finished (its open waited at most for the device)");
            assertEquals(0, reader.exitValue(), "dd exit status");
        } finally {
            reader.destroyForcibly();
        }
        assertArrayEquals(expected(seed), Files.readAllBytes(got), "another process read block " + j + " as last written");
        Files.delete(got);
    }

    private static byte[] expected(long seed) {
        byte[] b = new byte[BLOCK];
        if (seed >= 0) Xorshift.seeded(seed).fill(MemorySegment.ofArray(b));
        return b;
    }

    private static byte[] uncached(Path file) throws IOException {
        try (FileHandle h = FileHandle.openRead(file)) {
            h.fsync();
            PageCacheAdvice.dropCache(h, 0, 0);
        }
        return Workloads.read(file, 0, BLOCK * BLOCKS);
    }
}
