package io.directmap.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import io.directmap.testing.ChildWriter;
import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The lease thread is no single point of failure: each test runs a lease thread of its own and a
 * real writer process (dd) that the kernel holds back until the lease is given back. Every break
 * must be answered in a few seconds, far from the 45 s lease-break-time.
 */
class LeasesTest {
    private static final MethodHandle FCNTL = Libc.errnoHandle("fcntl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2));

    @TempDir
    Path dir;
    Leases leases;

    @BeforeEach
    void start() throws SysException {
        leases = new Leases();
    }

    @AfterEach
    void stop() {
        leases.close();
    }

    private Path file(String name) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, new byte[8192]);
        return p;
    }

    @Test
    void anInterruptedStartStillPublishesItsTid() throws SysException {
        Thread.currentThread().interrupt();
        Leases mine = new Leases();
        try {
            assertTrue(Thread.interrupted(), "the caller's interrupt flag is restored");
            assertNotEquals(0, mine.tid(), "the lease thread's tid is known before new returns");
        } finally {
            mine.close();
        }
    }

    @Test
    void aWriteLeaseIsRefusedWhileAnotherDescriptorIsOpenAndHoldsBackEvenAReader() throws Exception {
        Path a = file("w");
        try (FileHandle h = FileHandle.openReadWrite(a)) {
            try (FileHandle reader = FileHandle.openRead(a)) {
                SysException e = org.junit.jupiter.api.Assertions.assertThrows(SysException.class, () -> leases.takeWrite(h, leases::release));
                assertEquals(Errno.EAGAIN, e.errno(), "a reader's descriptor is open: " + e.getMessage());
                assertTrue(reader.fd() >= 0);
            }
            CountDownLatch broken = new CountDownLatch(1);
            leases.takeWrite(h, x -> {
                broken.countDown();
                leases.release(x);
            });
            assertTrue(leases.held(h), "held: F_GETLEASE reports the write lease taken");
            // A reader (dd reading one page) is held back until the lease is given back.
            java.lang.Process reader = new ProcessBuilder(java.util.List.of("dd", "if=" + a, "of=/dev/null", "bs=4096", "count=1", "status=none"))
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            try {
                assertTrue(broken.await(10, TimeUnit.SECONDS), "a reader's open breaks a write lease");
                assertTrue(reader.waitFor(10, TimeUnit.SECONDS), "the reader went on once the lease was given back");
                assertEquals(0, reader.exitValue());
            } finally {
                reader.destroyForcibly();
            }
            assertTrue(!leases.held(h), "given back");
        }
    }

    @Test
    void aSlowLetGoDoesNotDelayAnotherFilesBreak() throws Exception {
        Path a = file("a"), b = file("b");
        CountDownLatch slow = new CountDownLatch(1);
        try (FileHandle ha = FileHandle.openRead(a); FileHandle hb = FileHandle.openRead(b)) {
            leases.take(ha, h -> {
                try {
                    slow.await(20, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                leases.release(h);
            });
            leases.take(hb, leases::release);
            try (ChildWriter wa = ChildWriter.start(a)) {
                Thread.sleep(200);        // a's break is being handled (slowly) first
                try (ChildWriter wb = ChildWriter.start(b)) {
                    double tb = wb.await(10);
                    assertTrue(tb < 5, "b's writer waited " + tb + " s");
                    assertTrue(wa.isAlive(), "a's writer is still held back by its slow let-go");
                    slow.countDown();
                    double ta = wa.await(20);
                    assertTrue(ta < 10, "a's writer went on once a let go, after " + ta + " s");
                }
            }
        } finally {
            slow.countDown();
        }
    }

    @Test
    void aListenerThatThrowsLeavesTheThreadServingLaterBreaks() throws Exception {
        Path a = file("a"), b = file("b");
        try (FileHandle ha = FileHandle.openRead(a); FileHandle hb = FileHandle.openRead(b)) {
            leases.take(ha, h -> {
                throw new AssertionError("a listener that fails badly");
            });
            try (ChildWriter w = ChildWriter.start(a)) {
                double t = w.await(20);
                assertTrue(t < 5, "the lease was given back when its listener threw; the writer waited " + t + " s");
            }
            AtomicInteger told = new AtomicInteger();
            leases.take(hb, h -> {
                told.incrementAndGet();
                leases.release(h);
            });
            try (ChildWriter w = ChildWriter.start(b)) {
                double t = w.await(20);
                assertTrue(t < 5, "a later break is answered; the writer waited " + t + " s");
            }
            assertEquals(1, told.get());
            assertEquals(0, leases.restarts(), "the thread itself never died");
        }
    }

    @Test
    void aBreakAnnouncedBySigioIsFoundBySweeping() throws Exception {
        Path a = file("a");
        AtomicInteger told = new AtomicInteger();
        try (FileHandle ha = FileHandle.openRead(a)) {
            leases.take(ha, h -> {
                told.incrementAndGet();
                leases.release(h);
            });
            // F_SETSIG 0: the kernel announces the break with SIGIO, as when the realtime queue is full.
            // Unblocked, SIGIO would kill this JVM.
            int rc = (int) FCNTL.invokeExact(Libc.state(), ha.fd(), 10, 0);
            assertEquals(0, rc, "fcntl F_SETSIG 0");
            try (ChildWriter w = ChildWriter.start(a)) {
                double t = w.await(20);
                assertTrue(t < 5, "the writer waited " + t + " s");
            }
            assertEquals(1, told.get(), "the listener was told once");
        } catch (Throwable t) {
            if (t instanceof Exception e) throw e;
            throw new AssertionError(t);
        }
    }

    @Test
    void aDeadLeaseThreadIsReplacedAndItsBreakStillAnswered() throws Exception {
        Path a = file("a"), b = file("b");
        AtomicInteger told = new AtomicInteger();
        int tidBefore = leases.tid();
        try (FileHandle ha = FileHandle.openRead(a); FileHandle hb = FileHandle.openRead(b)) {
            leases.take(ha, h -> {
                told.incrementAndGet();
                leases.release(h);
            });
            leases.take(hb, h -> {
                told.incrementAndGet();
                leases.release(h);
            });
            try (var f = Faults.enable(FaultPoint.LEASE_THREAD_DIE, 1.0, 1); ChildWriter w = ChildWriter.start(a)) {
                double t = w.await(20);
                assertEquals(1, f.fired(), "the lease thread died before handling the break");
                assertTrue(t < 5, "its replacement answered the break; the writer waited " + t + " s");
            }
            assertEquals(1, leases.restarts(), "one replacement");
            assertNotEquals(0, leases.tid());
            assertNotEquals(tidBefore, leases.tid(), "leases point at the new thread");
            try (ChildWriter w = ChildWriter.start(b)) {
                double t = w.await(20);
                assertTrue(t < 5, "a lease taken before the death was re-pointed; the writer waited " + t + " s");
            }
            assertEquals(2, told.get());
        }
    }

    @Test
    void aThreadThatKeepsDyingIsGivenUpOnAndEveryLeaseHandedBack() throws Exception {
        Path a = file("a"), b = file("b");
        AtomicInteger told = new AtomicInteger();
        try (FileHandle ha = FileHandle.openRead(a); FileHandle hb = FileHandle.openRead(b)) {
            leases.take(ha, h -> {
                told.incrementAndGet();
                leases.release(h);
            });
            try (var f = Faults.enable(FaultPoint.LEASE_THREAD_DIE); ChildWriter w = ChildWriter.start(a)) {
                double t = w.await(20);
                assertEquals(4, f.fired(), "the thread and its three replacements died");
                assertTrue(t < 5, "the lease was handed to its listener all the same; the writer waited " + t + " s");
            }
            assertEquals(1, told.get());
            SysException e = org.junit.jupiter.api.Assertions.assertThrows(SysException.class, () -> leases.take(hb, leases::release));
            assertEquals("ENOLCK", e.errnoName());
            assertTrue(e.getMessage().contains("died 4 times"), e.getMessage());
        }
    }
}
