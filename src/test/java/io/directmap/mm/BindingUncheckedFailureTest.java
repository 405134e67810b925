package io.directmap.mm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.InvalidationReport;
import io.directmap.fs.OpenFile;
import io.directmap.pci.Topology.Endpoint;
import io.directmap.testing.Bytes;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A fault, a placement check or a callback that throws an unchecked exception (a RuntimeException
 * or an Error) in the middle of a Binding's read leaves no window pinned: invalidation, close and
 * munmap all return, and every device mapping is given back. Each let-go is bounded, so a window
 * left pinned fails the test instead of hanging it.
 */
class BindingUncheckedFailureTest {
    static final long WINDOW = 64 << 10, SIZE = 4 * WINDOW;
    static final Duration BOUND = Duration.ofSeconds(5);

    @TempDir Path dir;
    FsStack mm;
    SoftwareDevice gpu;
    Path file;
    Injecting ops;
    Vma vma;
    DeviceMemory.Buffer buf;

    /** The file's vm operations, with a throw where a test asks for one. */
    static final class Injecting implements VmOperations {
        final VmOperations real;
        final AtomicInteger deviceMaps = new AtomicInteger();
        volatile int failDeviceMapCall = -1;          // 1-based
        volatile Throwable deviceMapThrows, faultThrows, verifyThrows;

        Injecting(VmOperations real) {
            this.real = real;
        }

        @Override
        public MemorySegment fault(Vma vma, long offset, long length) throws IOException {
            if (faultThrows != null) throw raise(faultThrows);
            return real.fault(vma, offset, length);
        }

        @Override
        public DeviceMapping deviceMap(Vma vma, MapRequest request) throws IOException {
            if (deviceMaps.incrementAndGet() == failDeviceMapCall) throw raise(deviceMapThrows);
            return real.deviceMap(vma, request);
        }

        @Override
        public boolean verify(Vma vma, DeviceMapping mapping, long start, long end, boolean readFailed) throws IOException {
            if (verifyThrows != null) throw raise(verifyThrows);
            return real.verify(vma, mapping, start, end, readFailed);
        }

        @Override
        public void deviceUnmap(Vma vma, Endpoint importer, DeviceMapping mapping) {
            real.deviceUnmap(vma, importer, mapping);
        }
    }

    static RuntimeException raise(Throwable t) {
        if (t instanceof RuntimeException r) throw r;
        if (t instanceof Error e) throw e;
        throw new AssertionError(t);
    }

    /** What a test throws: both kinds of unchecked throwable. */
    enum Kind {
        RUNTIME_EXCEPTION {
            Throwable make() { return new IllegalStateException("injected by the test"); }
        },
        ERROR {
            Throwable make() { return new Error("injected by the test"); }
        };

        abstract Throwable make();
    }

    /** How the device is made to let go after the failed read. */
    enum LetGo { INVALIDATION, BINDING_CLOSE, MUNMAP }

    @BeforeEach
    void open() throws IOException {
        mm = FsStack.open();
        gpu = SoftwareDevice.create("gpu0", mm.topology());
        file = dir.resolve("data.bin");
        Workloads.write(file, 0, SIZE, 21);
        ops = new Injecting(mm.vmOperations());
        vma = mm.space().mmap(OpenFile.open(file), ops);
        buf = gpu.allocate(file.toString(), SIZE);
    }

    @AfterEach
    void close() {
        // Bounded: if a window were left pinned, the munmap below would wait for it forever.
        assertTimeoutPreemptively(BOUND, () -> {
            vma.close();
            buf.close();
            assertEquals(List.of(), mm.fs().tracker().all(), "every device mapping was given back");
            assertEquals(0, gpu.table().size(), "the IOMMU table is empty");
            gpu.close();
            mm.close();
        }, "munmap and cleanup returned");
    }

    Binding bind() throws IOException {
        return gpu.bind(vma, 0, SIZE, WINDOW, Set.of(), MapMode.MIXED);
    }

    Throwable failedRead(Binding b) {
        return assertThrows(Throwable.class, () -> b.read(0, SIZE, buf.segment(), n -> { }));
    }

    /** Lets go the way the test says, within the bound; returns how many mappings an invalidation took back. */
    int letGo(LetGo how, Binding b) {
        return assertTimeoutPreemptively(BOUND, () -> switch (how) {
            case INVALIDATION -> {
                InvalidationReport r = mm.fs().invalidate(OpenFile.of(vma), 0, SIZE, Invalidation.Cause.CHANGED, "test");
                assertEquals(List.of(), b.liveMappings(), "the invalidation took every window back");
                yield r.mappings();
            }
            case BINDING_CLOSE -> {
                b.close();
                yield 0;
            }
            case MUNMAP -> {
                vma.close();
                yield 0;
            }
        }, how + " returned: no window was left pinned");
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void faultThatThrowsMidReadLeavesNoWindowPinned(Kind kind) throws Exception {
        for (LetGo how : LetGo.values()) {   // munmap last: it ends the vma
            Throwable injected = kind.make();
            ops.deviceMaps.set(0);
            ops.failDeviceMapCall = 3;   // windows 0 and 1 fault and are pinned, window 2 throws
            ops.deviceMapThrows = injected;
            Binding b = bind();
            try {
                assertSame(injected, failedRead(b), "the read throws what device_map threw");
                assertEquals(2, b.liveMappings().size(), "the windows before the failure stay mapped");
                int taken = letGo(how, b);
                if (how == LetGo.INVALIDATION) {
                    assertEquals(2, taken, "the invalidation reached the two mapped windows");
                    // And the binding still works: the next read faults every window again.
                    b.read(0, SIZE, buf.segment(), n -> { });
                    Bytes.assertDeviceHoldsFile(file, 0, buf.segment().asSlice(0, SIZE));
                }
            } finally {
                assertTimeoutPreemptively(BOUND, b::close, "close returned");
            }
            assertEquals(0, vma.isClosed() ? 0 : vma.liveDeviceMappings(), how + ": every device mapping was given back");
        }
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void programmingTheTableThatThrowsGivesTheMappingBack(Kind kind) throws Exception {
        Throwable injected = kind.make();
        try (Binding b = bind()) {
            ops.faultThrows = injected;      // device_map answered; filling the table from it throws
            assertSame(injected, failedRead(b));
            assertEquals(0, b.liveMappings().size());
            assertEquals(List.of(), mm.fs().tracker().all(), "the mapping device_map handed out was unmapped");
            ops.faultThrows = null;
            b.read(0, SIZE, buf.segment(), n -> { });
            Bytes.assertDeviceHoldsFile(file, 0, buf.segment().asSlice(0, SIZE));
            assertEquals(4, letGo(LetGo.INVALIDATION, b));
        }
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void placementCheckThatThrowsAfterTheDmaLeavesNoWindowPinned(Kind kind) throws Exception {
        Throwable injected = kind.make();
        try (Binding b = bind()) {
            ops.verifyThrows = injected;
            assertSame(injected, failedRead(b));
            ops.verifyThrows = null;
            assertEquals(4, letGo(LetGo.INVALIDATION, b));
        }
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void progressCallbackThatThrowsEndsTheReadAfterItsDma(Kind kind) throws Exception {
        Throwable injected = kind.make();
        try (Binding b = bind()) {
            AtomicInteger calls = new AtomicInteger();
            Throwable thrown = assertThrows(Throwable.class, () -> b.read(0, SIZE, buf.segment(), n -> {
                calls.incrementAndGet();
                throw raise(injected);
            }));
            assertSame(injected, thrown, "the read throws what the callback threw");
            assertTrue(calls.get() >= 1);
            assertEquals(4, letGo(LetGo.INVALIDATION, b));
        }
    }

    @Test
    void onLetGoThatThrowsStopsNoOtherWindowLettingGo() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        try (Binding b = bind().onLetGo(l -> {
            calls.incrementAndGet();
            throw new IllegalStateException("injected by the test");
        })) {
            b.read(0, SIZE, buf.segment(), n -> { });
            assertEquals(4, b.liveMappings().size());
            assertEquals(4, letGo(LetGo.INVALIDATION, b), "all four windows let go although each callback threw");
            assertEquals(4, calls.get());
            assertEquals(4, b.invalidations());
            assertTrue(mm.fs().tracker().all().isEmpty());
        }
    }
}
