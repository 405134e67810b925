package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Binding;
import io.directmap.fault.FaultPoint;
import io.directmap.fault.Faults;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.Vma;
import io.directmap.testing.ChildWriter;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class Ext4DeviceWriteTest extends DeviceWriteContractTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @Override
    ScratchFs scratch() { return EXT4; }

    @Test
    void aWriteThatFailsMidwayLeavesEachBlockOldOrNewNamesTheRangeAndHoldsNoLease() throws IOException {
        long size = 64 * MiB;
        Workloads.write(file, 0, size, 11);
        Workloads.syncAndEvict(file);
        byte[] old = Workloads.read(file, 0, (int) size);
        Workloads.syncAndEvict(file);               // reading it cached it: cached pages would be refused for WRITE
        assertEquals(0, cachedPages(file, 0, size), "the file is cold, so the write goes direct");
        AtomicReference<Faults.Scope> fault = new AtomicReference<>();
        try (Source src = source(size, 12)) {
            IOException e;
            try (Vma vma = mm.mmapForWrite(file);
                 Binding b = gpu.bind(vma, 0, size, size, Set.of(MapFlag.WRITE), MapMode.MIXED)) {
                // The first request done turns the point on: the writes not yet started fail.
                e = assertThrows(IOException.class, () -> b.write(0, src.buffer().segment().asSlice(0, size), true, n -> {
                    if (fault.get() == null) fault.set(Faults.enable(FaultPoint.WRITE_EIO, 1.0, 1));
                }));
            } finally {
                if (fault.get() != null) fault.get().close();
            }
            assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("failed")
                    && e.getMessage().contains("EIO"), e.getMessage());
            assertEquals(List.of(), ChildWriter.leasesOn(file), "no lease is left held after the failure");
            byte[] now = readBack(file, 0, (int) size);
            int oldBlocks = 0, newBlocks = 0;
            for (int at = 0; at < size; at += 4096) {
                byte[] got = Arrays.copyOfRange(now, at, at + 4096);
                if (Arrays.equals(got, Arrays.copyOfRange(src.bytes(), at, at + 4096))) newBlocks++;
                else if (Arrays.equals(got, Arrays.copyOfRange(old, at, at + 4096))) oldBlocks++;
                else throw new AssertionError("block at " + at + " holds neither its old nor its new bytes");
            }
            assertTrue(newBlocks > 0 && oldBlocks > 0, "the write failed midway: " + newBlocks + " new, " + oldBlocks + " old");
        }
    }

    @Test
    void anotherProcessOpeningTheFileWaitsForTheDeviceAndReadsItsBytes() throws Exception {
        Workloads.write(file, 0, 4 * MiB, 21);
        Workloads.syncAndEvict(file);
        Path out = scratch().file("reader-out.bin");
        try (Source src = source(4 * MiB, 22);
             Vma vma = mm.mmapForWrite(file);
             Binding b = gpu.bind(vma, 0, 4 * MiB, 4 * MiB, Set.of(MapFlag.WRITE), MapMode.MIXED)) {
            Binding.Write w = b.write(0, src.buffer().segment().asSlice(0, 4 * MiB), false, n -> { });
            assertEquals(4 * MiB, w.directBytes(), w.segments().toString());
            assertEquals(1, ChildWriter.leasesOn(file).size(), "the live WRITE mapping holds a write lease");
            Process reader = new ProcessBuilder(List.of("dd", "if=" + file, "of=" + out, "bs=1M", "status=none"))
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            try {
                assertTrue(reader.waitFor(30, TimeUnit.SECONDS), "the reader's open waited for the device, then went on");
                assertEquals(0, reader.exitValue());
            } finally {
                reader.destroyForcibly();
            }
            assertTrue(b.invalidations() >= 1, "the reader's open took the mapping back");
            assertArrayEquals(src.bytes(), Files.readAllBytes(out), "the reader saw the device's bytes");
        } finally {
            Files.deleteIfExists(out);
        }
    }
}
