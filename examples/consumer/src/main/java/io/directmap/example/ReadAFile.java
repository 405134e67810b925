package io.directmap.example;

import io.directmap.*;
import java.nio.file.Path;
import java.util.zip.CRC32C;

/** Reads a whole file into a software GPU's memory and says how each range got there. */
public class ReadAFile {
    public static void main(String[] args) throws Exception {
        Path file = Path.of(args[0]);
        try (DirectMap dm = DirectMap.open();                 // default topology and policy
             Device gpu = dm.device(DeviceKind.GPU);          // gpu0, 8 GiB of device memory
             FileMapping m = gpu.map(file);                   // mmap + bind; nothing read yet
             Read r = m.read(0, m.length())) {                // device_map, DMA, read_retry
            System.out.printf("read %d bytes of %s into %s: %d direct, %d through the page cache%n",
                    r.bytes(), file, gpu.name(), r.directBytes(), r.fallbackBytes());
            for (Part p : r.parts()) System.out.println("  " + p);
            CRC32C crc = new CRC32C();
            crc.update(r.memory().asByteBuffer());           // the bytes, in device memory
            System.out.printf("crc32c %08x%n", crc.getValue());
        }
    }
}
