package io.directmap.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ring's bookkeeping when the kernel does not take every read (no root needed: reads of a
 * plain file): nothing is left unsubmitted, a refused submit never makes a wait block, what was
 * never submitted can be taken back, and no completion outlives its transfer.
 */
class IoUringTest {
    static final int READS = 8, BYTES = 4096;
    static final Duration BOUND = Duration.ofSeconds(30);

    @TempDir Path dir;
    Path file;
    IoUring ring;
    FileHandle handle;
    Arena arena;
    MemorySegment buffers;

    @BeforeEach
    void open() throws IOException {
        ring = IoUring.tryOpen(16).orElse(null);
        Assumptions.assumeTrue(ring != null, "this system has no io_uring");
        file = dir.resolve("data.bin");
        byte[] data = new byte[READS * BYTES];
        for (int i = 0; i < data.length; i++) data[i] = (byte) (i / BYTES + 1);
        Files.write(file, data);
        handle = FileHandle.openRead(file);
        arena = Arena.ofShared();
        buffers = arena.allocate((long) READS * BYTES, 4096);
    }

    @AfterEach
    void close() throws IOException {
        if (ring != null) ring.close();
        if (handle != null) handle.close();
        if (arena != null) arena.close();
    }

    private void prepareAll(int tag) throws SysException {
        for (int i = 0; i < READS; i++) {
            assertTrue(ring.prepareRead(handle, buffers.asSlice((long) i * BYTES, BYTES), (long) i * BYTES, tag * 100L + i));
        }
    }

    /** Waits for every read outstanding; checks each completion is of this round and its bytes. */
    private void completeAll(int tag) throws SysException {
        Set<Long> seen = new HashSet<>();
        while (ring.outstanding() > 0) {
            ring.submitAndWait(1);
            for (IoUring.Completion c; (c = ring.poll()) != null; ) {
                assertEquals(tag, c.userData() / 100, "a completion of this round, not an earlier one");
                assertEquals(BYTES, c.result());
                int i = (int) (c.userData() % 100);
                assertTrue(seen.add(c.userData()));
                assertEquals((byte) (i + 1), buffers.get(java.lang.foreign.ValueLayout.JAVA_BYTE, (long) i * BYTES + 7));
            }
        }
        assertEquals(READS, seen.size());
        assertTrue(ring.idle());
    }

    @Test
    void refusedSubmitsAreOfferedAgainUntilTaken() {
        assertTimeoutPreemptively(BOUND, () -> {
            try (var f = Faults.enable(FaultPoint.IO_URING_SUBMIT_EAGAIN, 1.0, IoUring.BUSY_TRIES - 1)) {
                prepareAll(1);
                completeAll(1);
                assertEquals(IoUring.BUSY_TRIES - 1, f.fired());
            }
        });
    }

    @Test
    void aSubmitRefusedPastTheBoundFailsAndWhatWasNotTakenIsTakenBack() {
        assertTimeoutPreemptively(BOUND, () -> {
            try (var f = Faults.enable(FaultPoint.IO_URING_SUBMIT_EAGAIN)) {
                prepareAll(1);
                SysException e = assertThrows(SysException.class, () -> ring.submitAndWait(1));
                assertEquals(Errno.EAGAIN, e.errno());
                assertTrue(e.getMessage().contains("DMAP_IO_URING=off"), e.getMessage());
                assertEquals(IoUring.BUSY_TRIES, f.fired());
            }
            assertEquals(0, ring.inFlight(), "the kernel took nothing");
            assertEquals(READS, ring.dropUnsubmitted());
            assertTrue(ring.idle());
            prepareAll(2);
            completeAll(2);
        });
    }

    @Test
    void writesLandWhereTheyWereAskedAndReportTheirBytes() {
        assertTimeoutPreemptively(BOUND, () -> {
            try (FileHandle w = FileHandle.openProbeWritable(file, false).blocking()) {
                for (int i = 0; i < READS; i++) buffers.asSlice((long) i * BYTES, BYTES).fill((byte) (0x40 + i));
                for (int i = 0; i < READS; i++) {
                    assertTrue(ring.prepareWrite(w.fd(), buffers.asSlice((long) i * BYTES, BYTES), (long) (READS - 1 - i) * BYTES, i));
                }
                int done = 0;
                while (ring.outstanding() > 0) {
                    ring.submitAndWait(1);
                    for (IoUring.Completion c; (c = ring.poll()) != null; done++) assertEquals(BYTES, c.result());
                }
                assertEquals(READS, done);
            }
            byte[] now = Files.readAllBytes(file);
            for (int i = 0; i < READS; i++) {
                assertEquals((byte) (0x40 + i), now[(READS - 1 - i) * BYTES + 123], "write " + i + " landed at its offset");
            }
        });
    }

    @Test
    void waitingWithNothingOutstandingReturnsAtOnce() {
        assertTimeoutPreemptively(BOUND, () -> {
            ring.submitAndWait(1);
            assertTrue(ring.idle());
        });
    }

    @Test
    void eioAndShortReadsShowInTheCompletionResult() {
        assertTimeoutPreemptively(BOUND, () -> {
            try (var eio = Faults.enable(FaultPoint.READ_EIO, 1.0, 1); var shortRead = Faults.enable(FaultPoint.READ_SHORT, 1.0, 1)) {
                assertTrue(ring.prepareRead(handle, buffers.asSlice(0, 4 * BYTES), 0, 1));
                assertTrue(ring.prepareRead(handle, buffers.asSlice(4 * BYTES, 4 * BYTES), 4 * BYTES, 2));
                int eios = 0, shorts = 0;
                while (ring.outstanding() > 0) {
                    ring.submitAndWait(1);
                    for (IoUring.Completion c; (c = ring.poll()) != null; ) {
                        assertNotNull(c);
                        if (c.result() == -Errno.EIO) eios++;
                        else if (c.result() == IoUring.shortened(4 * BYTES)) shorts++;
                    }
                }
                assertEquals(1, eios);
                assertEquals(1, shorts);
                assertEquals(1, eio.fired());
                assertEquals(1, shortRead.fired());
            }
            assertTrue(ring.idle());
        });
    }
}
