package io.directmap.bench;

import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.OpenFile;
import io.directmap.mm.DeviceMapping;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapRequest;
import io.directmap.mm.MappingOwner;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The control path, on a real loop-mounted xfs (root only): device_map of a whole 1 GiB file with
 * 1, 16 and 1,000 extents, device_unmap, and the invalidation of 1,000 mappings of one file.
 * Run with scripts/jmh (it prints the JMH table).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class ControlPathBench {
    static final long MiB = 1 << 20, GiB = 1L << 30;

    @Param({"1", "16", "1000"})
    int extents;

    ScratchFilesystem fs;
    FsStack mm;
    SoftwareDevice gpu;
    OpenFile file;
    DeviceMapping keeper;   // a live mapping, as a device with the file bound has: the lease stays held
    MapRequest whole;
    MapRequest pinFirstRun; // device_map with PIN of the first run of data (a pin is all direct or refused: no hole in it)

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        fs = ScratchFilesystem.create(ScratchFilesystem.Type.XFS, 6 * GiB, false, List.of());
        Path p = fs.mountPoint().resolve("data-" + extents + ".bin");
        // extents runs of data, each followed by a 4 KiB hole (so they stay separate extents), 1 GiB of data in all.
        long run = GiB / extents / 4096 * 4096;
        for (int i = 0; i < extents; i++) Workloads.write(p, i * (run + 4096), run, i);
        Workloads.syncAndEvict(p);
        mm = FsStack.open();
        gpu = SoftwareDevice.create("gpu0", mm.topology());
        file = OpenFile.open(p);
        whole = new MapRequest(gpu.endpoint(), 0, extents * (run + 4096) - 4096);
        pinFirstRun = new MapRequest(gpu.endpoint(), 0, run, java.util.EnumSet.of(io.directmap.mm.MapFlag.PIN),
                io.directmap.mm.MapMode.ALL_OR_NOTHING);
        keeper = mm.fs().deviceMap(file, new MapRequest(gpu.endpoint(), 0, 4096));
        DeviceMapping check = mm.fs().deviceMap(file, whole);
        long direct = check.directBytes();
        mm.fs().deviceUnmap(check);
        if (direct != extents * run) throw new IllegalStateException("expected all " + extents * run + " bytes direct, got " + direct);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        mm.fs().deviceUnmap(keeper);
        file.close();
        gpu.close();
        mm.close();
        fs.close();
    }

    /** device_map of the whole file (FIEMAP, cachestat, block device decisions, tracking) and its device_unmap. */
    @Benchmark
    public long deviceMapThenUnmap() throws IOException {
        DeviceMapping m = mm.fs().deviceMap(file, whole);
        mm.fs().deviceUnmap(m);
        return m.directBytes();
    }

    /**
     * device_map with PIN of the file's first run of data and the release of its dma_buf: the
     * fanotify mark and the check that no one has the file open for writing, the plan (FIEMAP,
     * cachestat, block device), the buffer, and at release the mark removed and the descriptor closed.
     */
    @Benchmark
    public boolean pinThenRelease() throws IOException {
        io.directmap.fs.PinOutcome o = mm.fs().pin(file, pinFirstRun, mm.changeWatch());
        if (!(o instanceof io.directmap.fs.PinOutcome.Pinned p)) throw new IllegalStateException("the pin was refused: " + o);
        return p.buf().release();
    }

    /** A mapping made before each call of {@link #deviceUnmap}, untimed. */
    @State(Scope.Thread)
    public static class OneMapping {
        DeviceMapping m;

        @Setup(Level.Invocation)
        public void map(ControlPathBench b) throws IOException {
            m = b.mm.fs().deviceMap(b.file, b.whole);
        }
    }

    /** device_unmap alone. */
    @Benchmark
    public void deviceUnmap(OneMapping one) {
        mm.fs().deviceUnmap(one.m);
    }

    /** 1,000 live mappings of 1 MiB each, made before each call of {@link #invalidate1000Mappings}, untimed. */
    @State(Scope.Thread)
    public static class ThousandMappings {
        @Setup(Level.Invocation)
        public void map(ControlPathBench b) throws IOException {
            for (int i = 0; i < 1000; i++) {
                b.mm.fs().deviceMap(b.file, new MapRequest(b.gpu.endpoint(), i * MiB, (i + 1) * MiB),
                        MappingOwner.NOBODY);
            }
        }
    }

    /** Taking back 1,000 live mappings of one file (each owner told, each mapping released). */
    @Benchmark
    public int invalidate1000Mappings(ThousandMappings many) {
        return mm.fs().invalidate(file, 0, GiB, Invalidation.Cause.CHANGED, "bench").mappings();
    }
}
