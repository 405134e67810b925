package io.directmap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.lang.Xorshift;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The library's facade: a device by kind, a file mapped and read synchronously, asynchronously and
 * in batches, with bytes equal to the file's; bad input fails only its own read, with the message a
 * synchronous read gives; closing a mapping or a buffer with reads running waits for them and
 * leaks no device memory. Runs as any user (as another user than root every byte falls back).
 */
class DirectMapTest {
    static final int PAGE = 4096;
    static final int SIZE = 8 * (1 << 20) + 1234;   // not a whole number of pages

    @TempDir Path dir;
    Path file;
    byte[] content;
    DirectMap dm;
    Device gpu;

    @BeforeEach
    void setUp() throws IOException {
        content = new byte[SIZE];
        Xorshift.seeded(9).fill(content);
        file = dir.resolve("data.bin");
        Files.write(file, content);
        dm = DirectMap.open();
        gpu = dm.device(DeviceKind.GPU);
    }

    @AfterEach
    void tearDown() throws IOException {
        dm.close();
    }

    private void assertBytes(Read r) {
        byte[] got = r.memory().toArray(ValueLayout.JAVA_BYTE);
        int from = (int) r.offset();
        assertArrayEquals(Arrays.copyOfRange(content, from, from + (int) r.bytes()), got, r + ": bytes differ from the file");
    }

    private static void assertPartsCover(Read r) {
        long at = r.offset();
        for (Part p : r.parts()) {
            assertEquals(at, p.start(), r + ": parts " + r.parts() + " leave a gap or overlap");
            assertTrue(p.end() > p.start(), r + ": empty part " + p);
            if (p instanceof Part.Fallback f) {
                assertFalse(f.reason().isBlank(), "a fallback names its reason: " + f);
                assertFalse(f.summary().isBlank(), "a fallback says why: " + f);
            }
            at = p.end();
        }
        assertEquals(r.offset() + r.bytes(), at, r + ": parts " + r.parts() + " stop short");
    }

    @Test
    void devicesAreNamedByKindAndANameInUseIsRefused() {
        assertEquals("gpu0", gpu.name());
        assertEquals(DeviceKind.GPU, gpu.kind());
        assertEquals(DeviceKind.GPU.queueDepth(), gpu.queueDepth());
        try (Device second = dm.device(DeviceKind.GPU); Device nic = dm.device(DeviceKind.NIC)) {
            assertEquals("gpu1", second.name());
            assertEquals("nic0", nic.name());
            assertEquals(List.of(gpu, second, nic), dm.devices());
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        String m = assertThrows(IllegalArgumentException.class, () -> dm.device("gpu0", DeviceKind.FPGA)).getMessage();
        assertTrue(m.contains("gpu0") && m.contains("close it first"), m);
        assertEquals(List.of(gpu), dm.devices(), "closed devices are forgotten");
    }

    @Test
    void aWholeFileReadHasTheFilesBytesAndSaysHowTheyCame() throws IOException {
        long free = gpu.memoryFree();
        try (FileMapping m = gpu.map(file); Read r = m.read(0, m.length())) {
            assertEquals(SIZE, m.length());
            assertEquals(SIZE, r.bytes());
            assertEquals(SIZE, r.memory().byteSize());
            assertBytes(r);
            assertPartsCover(r);
            assertEquals(SIZE, r.directBytes() + r.fallbackBytes(), "up to the end of the file, every byte went one way");
            assertTrue(r.memory().isReadOnly());
            assertTrue(gpu.memoryFree() < free, "the read holds device memory");
        }
        assertEquals(free, gpu.memoryFree(), "closing the read and the mapping gives the memory back");
    }

    @Test
    void unalignedReadsAndRangesReadTheirBytes() throws IOException {
        try (FileMapping m = gpu.map(file, MapOptions.defaults().range(5000, SIZE - 77).window(PAGE * 16))) {
            for (long[] rw : new long[][] {{5000, 1}, {5001, 12345}, {PAGE * 100 + 3, PAGE * 40}, {SIZE - 78, 1}}) {
                try (Read r = m.read(rw[0], rw[1])) {
                    assertBytes(r);
                    assertPartsCover(r);
                }
            }
            String msg = assertThrows(IOException.class, () -> m.read(4999, 10)).getMessage();
            assertTrue(msg.contains(file.toString()) && msg.contains("[4999, 5009)") && msg.contains("[5000, " + (SIZE - 77) + ")"), msg);
        }
    }

    @Test
    void badMapOptionsAreRefusedWithTheFileAndWhatToGive() throws IOException {
        String past = assertThrows(IOException.class, () -> gpu.map(file, MapOptions.defaults().range(0, SIZE + 1))).getMessage();
        assertTrue(past.contains(file.toString()) && past.contains("give END <= " + SIZE), past);
        String window = assertThrows(IOException.class, () -> gpu.map(file, MapOptions.defaults().window(1000))).getMessage();
        assertTrue(window.contains(file.toString()) && window.contains("multiple of the page size"), window);
        Path empty = Files.createFile(dir.resolve("empty.bin"));
        String e = assertThrows(IOException.class, () -> gpu.map(empty)).getMessage();
        assertTrue(e.contains(empty.toString()) && e.contains("empty"), e);
        String missing = assertThrows(IOException.class, () -> gpu.map(dir.resolve("missing.bin"))).getMessage();
        assertTrue(missing.contains("missing.bin"), missing);
    }

    @Test
    void aReadIntoACallersBufferNeedsAPageAlignedOffsetAndRoom() throws IOException {
        try (FileMapping m = gpu.map(file); DeviceBuffer b = gpu.allocate(1 << 20)) {
            Read r = m.read(PAGE * 3, 1000, b);
            assertBytes(r);
            assertEquals(r.memory().address(), b.memory().address(), "the read lands at the start of the buffer");
            r.close();   // owns nothing: the buffer keeps its bytes
            assertEquals(content[PAGE * 3], b.memory().get(ValueLayout.JAVA_BYTE, 0));
            String unaligned = assertThrows(IOException.class, () -> m.read(PAGE + 1, 10, b)).getMessage();
            assertTrue(unaligned.contains(file.toString()) && unaligned.contains("multiple of the page size"), unaligned);
            String small = assertThrows(IOException.class, () -> m.read(0, (1 << 20) + 1, b)).getMessage();
            assertTrue(small.contains(file.toString()) && small.contains("allocate at least"), small);
        }
    }

    @Test
    void manyAsyncReadsOnOneMappingReadTheFileAtMostQueueDepthAtOnce() throws Exception {
        Xorshift random = Xorshift.seeded(1);
        try (FileMapping m = gpu.map(file, MapOptions.defaults().window(1 << 20))) {
            List<CompletableFuture<Read>> futures = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                long off = random.nextInt(SIZE - 1);
                long len = 1 + random.nextInt((int) Math.min(SIZE - off, 300_000));
                futures.add(m.readAsync(off, len));
            }
            for (CompletableFuture<Read> f : futures) {
                try (Read r = f.get()) {
                    assertBytes(r);
                    assertPartsCover(r);
                }
            }
        }
        assertTrue(gpu.mostReadsRunning() >= 1 && gpu.mostReadsRunning() <= gpu.queueDepth(),
                "at most the queue depth (" + gpu.queueDepth() + ") ran at once: " + gpu.mostReadsRunning());
    }

    @Test
    void aBadReadFailsOnlyItsOwnFutureWithTheSynchronousMessage() throws Exception {
        try (FileMapping m = gpu.map(file)) {
            String sync = assertThrows(IOException.class, () -> m.read(SIZE - 10, 20)).getMessage();
            ReadBatch batch = m.batch();
            CompletableFuture<Read> a = batch.add(0, PAGE);
            CompletableFuture<Read> bad = batch.add(SIZE - 10, 20);
            CompletableFuture<Read> c = batch.add(PAGE * 7 + 5, 100_000);
            assertEquals(3, batch.size());
            assertFalse(a.isDone(), "nothing starts before submit");
            CompletableFuture<List<Read>> all = batch.submit();
            ExecutionException x = assertThrows(ExecutionException.class, bad::get);
            assertInstanceOf(IOException.class, x.getCause());
            assertEquals(sync, x.getCause().getMessage(), "the future fails with what the synchronous read throws");
            CompletionException ax = assertThrows(CompletionException.class, all::join);
            assertSame(x.getCause(), ax.getCause(), "the batch fails with its read's failure");
            assertBytes(a.get());
            assertBytes(c.get());
            assertThrows(IllegalStateException.class, () -> batch.add(0, 1), "a batch is submitted once");
        }
    }

    @Test
    void aBatchGivesItsReadsInOrder() throws Exception {
        try (FileMapping m = gpu.map(file)) {
            ReadBatch batch = m.batch();
            for (int i = 0; i < 32; i++) batch.add((long) i * 200_000, 150_000);
            List<Read> reads = batch.submit().get();
            assertEquals(32, reads.size());
            for (int i = 0; i < 32; i++) {
                assertEquals((long) i * 200_000, reads.get(i).offset());
                assertBytes(reads.get(i));
            }
        }
    }

    @Test
    void closingAMappingWithReadsRunningWaitsForThemAndGivesEveryByteBack() throws Exception {
        long free = gpu.memoryFree();
        for (int round = 0; round < 5; round++) {
            FileMapping m = gpu.map(file, MapOptions.defaults().window(1 << 20));
            List<CompletableFuture<Read>> futures = new ArrayList<>();
            for (int i = 0; i < 100; i++) futures.add(m.readAsync((long) (i % 8) << 20, 1 << 20));
            assertTimeoutPreemptively(Duration.ofSeconds(60), m::close);
            for (CompletableFuture<Read> f : futures) {
                // Every read ended, well or with "closed"; none is left running into freed memory.
                Read r = assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
                    try {
                        return f.get();
                    } catch (ExecutionException e) {
                        assertInstanceOf(IllegalStateException.class, e.getCause(), "only closing may fail a read here");
                        assertTrue(e.getCause().getMessage().contains("is closed"), e.getCause().getMessage());
                        return null;
                    }
                });
                if (r != null) assertThrows(IllegalStateException.class, r::memory, "closing the mapping gave its reads' memory back");
            }
            assertThrows(IllegalStateException.class, () -> m.read(0, 1));
        }
        assertEquals(free, gpu.memoryFree(), "no device memory is left held");
    }

    @Test
    void closingABufferWaitsForTheReadsWritingIntoIt() throws Exception {
        long free = gpu.memoryFree();
        try (FileMapping m = gpu.map(file)) {
            for (int round = 0; round < 5; round++) {
                DeviceBuffer b = gpu.allocate(SIZE + PAGE);
                List<CompletableFuture<Read>> futures = new ArrayList<>();
                for (int i = 0; i < 20; i++) futures.add(m.readAsync(0, SIZE, b));
                assertTimeoutPreemptively(Duration.ofSeconds(60), b::close);
                for (CompletableFuture<Read> f : futures) {
                    try {
                        f.get();
                    } catch (ExecutionException e) {
                        assertInstanceOf(IllegalStateException.class, e.getCause());
                        assertTrue(e.getCause().getMessage().contains("is closed"), e.getCause().getMessage());
                    }
                }
                assertThrows(IllegalStateException.class, b::memory);
            }
        }
        assertEquals(free, gpu.memoryFree(), "every buffer's memory came back");
    }

    @Test
    void closingTheDirectMapClosesItsDevicesAndMappings() throws Exception {
        FileMapping m = gpu.map(file);
        CompletableFuture<Read> f = m.readAsync(0, SIZE);
        dm.close();
        assertTrue(f.isDone(), "the read ended before close returned");
        assertThrows(IllegalStateException.class, () -> m.read(0, 1));
        assertEquals(List.of(), dm.devices());
        assertThrows(IllegalStateException.class, () -> dm.device(DeviceKind.GPU));
        CompletableFuture<Read> late = m.readAsync(0, 1);
        ExecutionException x = assertThrows(ExecutionException.class, late::get);
        assertInstanceOf(IllegalStateException.class, x.getCause());
    }

    @Test
    void aMissingTopologyFileIsNamed() {
        Path missing = dir.resolve("no-such-topology");
        String m = assertThrows(IOException.class, () -> DirectMap.builder().topology(missing).open()).getMessage();
        assertTrue(m.contains(missing.toString()), m);
    }

    @Test
    void theLearningPolicyReadsTheFileToo() throws IOException {
        try (DirectMap learn = DirectMap.builder().policy(PathPolicy.LEARN).evictedPageCostNanos(500).open();
             Device nic = learn.device(DeviceKind.NIC);
             FileMapping m = nic.map(file);
             Read r = m.read(0, SIZE)) {
            assertEquals(PathPolicy.LEARN, learn.policy());
            assertBytes(r);
        }
        assertThrows(IllegalArgumentException.class, () -> DirectMap.builder().evictedPageCostNanos(Double.NaN));
    }

}
