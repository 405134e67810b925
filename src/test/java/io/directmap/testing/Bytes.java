package io.directmap.testing;

import static org.junit.jupiter.api.Assertions.fail;

import io.directmap.tools.Workloads;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/** Byte-for-byte comparison of device memory with what the file system returns. */
public final class Bytes {
    private Bytes() {}

    public static void assertDeviceHoldsFile(Path file, long start, MemorySegment device) throws IOException {
        byte[] expected = Workloads.read(file, start, Math.toIntExact(device.byteSize()));
        long at = MemorySegment.mismatch(device, 0, device.byteSize(), MemorySegment.ofArray(expected), 0, expected.length);
        if (at >= 0) {
            fail("device memory differs from " + file + " at file offset " + (start + at) + ": device has "
                    + device.get(java.lang.foreign.ValueLayout.JAVA_BYTE, at) + ", the file " + expected[(int) at]);
        }
    }
}
