package io.directmap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.lang.Xorshift;
import io.directmap.mm.InvalidRequestException;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The facade's failure paths: a second or concurrent close waits for the first; close returns when
 * completion callbacks block on the device's own reads; a cancelled read does not write; a batch
 * that fails or is cancelled gives its reads' memory back; messages name the file, the range and
 * what to do; closed things refuse their memory.
 */
class FacadeFailurePathsTest {
    static final int PAGE = 4096;
    static final int SIZE = 64 * PAGE;

    @TempDir Path dir;
    Path file;
    byte[] content;
    DirectMap dm;
    Device gpu;

    @BeforeEach
    void setUp() throws IOException {
        content = new byte[SIZE];
        Xorshift.seeded(10).fill(content);
        file = dir.resolve("data.bin");
        Files.write(file, content);
        dm = DirectMap.open();
        gpu = dm.device(DeviceKind.GPU);
    }

    @AfterEach
    void tearDown() throws IOException {
        dm.close();
    }

    private static void await(String what, BooleanSupplier done) throws InterruptedException {
        long until = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > until) throw new AssertionError("timed out waiting for " + what);
            Thread.sleep(2);
        }
    }

    private static boolean onReaderThread() {
        return Thread.currentThread().getName().startsWith("dmap-");
    }

    /**
     * Holds every reader thread of the device in a completion callback until gate opens: submits
     * reads until queueDepth() callbacks are blocked on reader threads. Returns how many read tasks
     * it submitted.
     */
    private int holdEveryReader(FileMapping m, CountDownLatch gate) throws InterruptedException {
        AtomicInteger held = new AtomicInteger();
        int submitted = 0;
        while (held.get() < gpu.queueDepth()) {
            if (submitted > 100_000) throw new AssertionError("could not hold every reader thread");
            m.readAsync(0, PAGE).thenAccept(r -> {
                r.close();
                if (!onReaderThread()) return;
                held.incrementAndGet();
                try {
                    gate.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            submitted++;
            Thread.sleep(1);
        }
        return submitted;
    }

    @Test
    void aSecondCloseWaitsUntilTheFirstHasFinished() throws Exception {
        InFlight reads = new InFlight("the thing", "open another");
        reads.enter();
        CountDownLatch firstMayFinish = new CountDownLatch(1);
        CountDownLatch firstReturned = new CountDownLatch(1);
        Thread first = Thread.ofPlatform().daemon().start(() -> {
            assertTrue(reads.close(), "the first close closes");
            firstReturned.countDown();
            try {
                firstMayFinish.await();
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
            reads.closed();
        });
        await("the first close to wait for the read", () -> first.getState() == Thread.State.WAITING);
        CompletableFuture<Boolean> second = new CompletableFuture<>();
        Thread other = Thread.ofPlatform().daemon().start(() -> second.complete(reads.close()));
        await("the second close to wait or return", () -> other.getState() == Thread.State.WAITING || second.isDone());
        assertFalse(second.isDone(), "a second close returned while the first waits for a read");
        reads.exit();
        firstReturned.await();
        Thread.sleep(50);
        assertFalse(second.isDone(), "a second close returned before the first finished closing");
        firstMayFinish.countDown();
        assertFalse(second.get(), "the second close closed nothing");
        first.join();
        other.interrupt();   // an interrupt no longer matters: it has returned
    }

    @Test
    void aSecondCloseOfTheDeviceWaitsForTheFirstAndLeavesNothingRunning() throws Exception {
        FileMapping m = gpu.map(file);
        CountDownLatch gate = new CountDownLatch(1);
        holdEveryReader(m, gate);
        CompletableFuture<Void> firstClose = CompletableFuture.runAsync(() -> assertDoesNotThrow(dm::close));
        await("the device to start closing", () -> assertThrowsIse(() -> gpu.allocate(PAGE)));
        CompletableFuture<Void> secondClose = CompletableFuture.runAsync(() -> assertDoesNotThrow(gpu::close));
        try {
            Thread.sleep(100);
            assertFalse(secondClose.isDone(), "a second close of the device returned while the first waits for its readers");
        } finally {
            gate.countDown();
        }
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
            firstClose.join();
            secondClose.join();
        });
        assertTrue(dm.devices().isEmpty(), "the device is closed and forgotten");
    }

    private static boolean assertThrowsIse(org.junit.jupiter.api.function.Executable e) {
        try {
            e.execute();
            return false;
        } catch (IllegalStateException x) {
            return true;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    @Test
    void closeReturnsWhenCallbacksBlockOnTheDevicesOwnReads() throws Exception {
        FileMapping m = gpu.map(file);
        // Hold every reader thread, then queue queueDepth reads whose callbacks block on a read of
        // their own: queued behind held threads, each callback is attached before its read runs,
        // so it runs on a reader thread. Let go of the hold: each thread takes one of them and
        // blocks in join() on a read queued behind the others, and no thread is left to run any.
        CountDownLatch gate = new CountDownLatch(1);
        holdEveryReader(m, gate);
        AtomicInteger blocked = new AtomicInteger();
        List<CompletableFuture<Read>> outer = new ArrayList<>();
        for (int n = 0; n < gpu.queueDepth(); n++) {
            outer.add(m.readAsync(0, PAGE).thenApply(r -> {
                r.close();
                if (!onReaderThread()) return r;
                blocked.incrementAndGet();
                try {
                    return m.readAsync(PAGE, PAGE).join();   // what the javadoc says not to do
                } finally {
                    blocked.decrementAndGet();
                }
            }));
        }
        gate.countDown();
        await("every reader thread to wait for a read queued behind it", () -> blocked.get() == gpu.queueDepth());
        Thread.sleep(50);
        assertEquals(gpu.queueDepth(), blocked.get(), "every reader thread waits for a read queued behind it");
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> dm.close(), "close hangs on callbacks that block on reads");
        for (CompletableFuture<Read> f : outer) {
            assertTrue(f.isDone(), "every future completed");
            if (f.isCompletedExceptionally()) {
                CompletionException x = assertThrows(CompletionException.class, f::join);
                assertInstanceOf(IllegalStateException.class, x.getCause(), "a queued read fails on its closed mapping");
            } else {
                f.join().close();
            }
        }
        assertEquals(gpu.memoryBytes(), gpu.memoryFree(), "no device memory left allocated");
    }

    @Test
    void aReadCancelledBeforeItStartsDoesNotWriteIntoItsBuffer() throws Exception {
        FileMapping m = gpu.map(file);
        DeviceBuffer buf = gpu.allocate(4 * PAGE);
        byte[] before = buf.memory().toArray(ValueLayout.JAVA_BYTE);
        CountDownLatch gate = new CountDownLatch(1);
        int submitted = holdEveryReader(m, gate);
        CompletableFuture<Read> f = m.readAsync(0, 4 * PAGE, buf);
        assertTrue(f.cancel(false), "cancelled while queued");
        gate.countDown();
        await("every read task to end", () -> gpu.readTasksEnded() == submitted + 1);
        assertArrayEquals(before, buf.memory().toArray(ValueLayout.JAVA_BYTE), "a cancelled read wrote into the buffer");
        buf.close();
    }

    @Test
    void aFailedBatchLeavesTheReadsThatSucceededToTheCallerWhoGivesThemBack() throws Exception {
        FileMapping m = gpu.map(file);
        ReadBatch batch = m.batch();
        CompletableFuture<Read> good = batch.add(0, 8 * PAGE);
        CompletableFuture<Read> other = batch.add(8 * PAGE, 8 * PAGE);
        batch.add(SIZE, PAGE);   // outside the file: fails
        CompletableFuture<List<Read>> all = batch.submit();
        CompletionException x = assertThrows(CompletionException.class, all::join);
        assertInstanceOf(InvalidRequestException.class, x.getCause(), "the batch fails with the bad read's failure");
        assertEquals(gpu.memoryBytes() - 16 * PAGE, gpu.memoryFree(), "the reads that succeeded keep their memory");
        good.join().close();
        other.join().close();
        assertEquals(gpu.memoryBytes(), gpu.memoryFree(), "closing them gives every byte back");
    }

    @Test
    void aCancelledBatchGivesBackEveryReadsMemory() throws Exception {
        FileMapping m = gpu.map(file);
        CountDownLatch gate = new CountDownLatch(1);
        int submitted = holdEveryReader(m, gate);
        ReadBatch batch = m.batch();
        List<CompletableFuture<Read>> reads = new ArrayList<>();
        for (int i = 0; i < 4; i++) reads.add(batch.add((long) i * 8 * PAGE, 8 * PAGE));
        CompletableFuture<List<Read>> all = batch.submit();
        assertTrue(all.cancel(false));
        for (CompletableFuture<Read> f : reads) assertTrue(f.isCancelled(), "cancelling the batch cancels its reads");
        gate.countDown();
        await("every read task to end", () -> gpu.readTasksEnded() == submitted + 4);
        assertEquals(gpu.memoryBytes(), gpu.memoryFree(), "a cancelled batch left device memory allocated");
    }

    @Test
    void deviceMemoryThatIsFullSaysWhatUsesItAndWhatToDo() throws IOException {
        Device small = dm.device("gpu7", DeviceKind.GPU, 4 * PAGE);
        FileMapping m = small.map(file);
        IOException x = assertThrows(IOException.class, () -> m.read(0, 8 * PAGE));
        assertTrue(x.getMessage().startsWith(file + ": read [0, " + 8 * PAGE + "): "), x.getMessage());
        assertTrue(x.getMessage().contains("close Reads you no longer need, read a smaller range, or give the device more memory"),
                x.getMessage());
        assertFalse(x.getMessage().contains("map a smaller range"), x.getMessage());
        IOException y = assertThrows(IOException.class, () -> small.allocate(8 * PAGE));
        assertTrue(y.getMessage().startsWith("gpu7: a buffer: "), y.getMessage());
        assertTrue(y.getMessage().contains("allocate less"), y.getMessage());
        assertFalse(y.getMessage().contains("map a smaller range"), y.getMessage());
    }

    @Test
    void aFailureFromBelowNamesTheFileAndRangeAndKeepsItsCause() {
        IOException eio = new IOException("io_uring read: EIO (Input/output error)");
        IOException x = Internals.fromBelow(file + ": read [0, 4096)", eio);
        assertEquals(file + ": read [0, 4096): io_uring read: EIO (Input/output error)", x.getMessage());
        assertSame(eio, x.getCause());
        IOException bad = new InvalidRequestException(file + ": read [0, 1) is outside the mapped range");
        assertSame(bad, Internals.fromBelow("x", bad), "bad input names the file already and keeps its type");
    }

    @Test
    void aClosedThingSaysWhatToDoInstead() throws IOException {
        FileMapping m = gpu.map(file);
        DeviceBuffer buf = gpu.allocate(PAGE);
        buf.close();
        IllegalStateException b = assertThrows(IllegalStateException.class, () -> m.read(0, PAGE, buf));
        assertTrue(b.getMessage().contains("allocate another"), b.getMessage());
        assertFalse(b.getMessage().contains("open it again"), b.getMessage());
        m.close();
        IllegalStateException c = assertThrows(IllegalStateException.class, () -> m.read(0, PAGE));
        assertTrue(c.getMessage().contains("map it again with Device.map"), c.getMessage());
    }

    @Test
    void aClosedReadIntoABufferRefusesItsMemoryAndTheBufferKeepsIt() throws IOException {
        FileMapping m = gpu.map(file);
        DeviceBuffer buf = gpu.allocate(PAGE);
        Read r = m.read(0, PAGE, buf);
        r.memory();
        r.close();
        assertThrows(IllegalStateException.class, r::memory, "a closed read refuses memory()");
        assertEquals(PAGE, buf.memory().byteSize(), "the buffer's memory is the caller's still");
        buf.close();
    }

    @Test
    void aRangeEndBelowMinusOneIsRefused() {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> MapOptions.defaults().range(0, -5));
        assertTrue(x.getMessage().contains("-5") && x.getMessage().contains("-1 for the end of the file"), x.getMessage());
        assertEquals(-1, MapOptions.defaults().range(0, -1).end(), "-1 still means the end of the file");
    }
}
