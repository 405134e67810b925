package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** dmap write as a user runs it, on a loop-mounted ext4: the JSON programs read, the reasons, the bytes. */
class WriteCommandTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @Test
    void writeJsonSaysWhatWentDirectWhatFellBackAndThatTheFileReadsBackAsTheSource() throws Exception {
        Path file = EXT4.file("write-target.bin"), src = EXT4.file("write-source.bin");
        try {
            Workloads.write(file, 0, 2 << 20, 31);
            Workloads.write(file, 4 << 20, 2 << 20, 32);      // [2, 4) MiB is a hole
            Workloads.syncAndEvict(file);
            Workloads.write(src, 0, 6 << 20, 33);
            DmapCommandTest.Result r = DmapCommandTest.dmap("write", file.toString(), "--from", src.toString(), "--sync", "--json");
            assertEquals(0, r.code(), r.err() + r.out());
            for (String field : new String[] {"\"bytes\": 6291456", "\"direct_bytes\"", "\"fallback_bytes\"", "\"checksum_ok\": true",
                    "\"segments\"", "\"path\": \"direct\"", "\"reason\": \"hole\""}) {
                assertTrue(r.out().contains(field), field + " missing from\n" + r.out());
            }
            assertEquals(4 << 20, DmapCommandTest.number(r.out(), "direct_bytes"), r.out());
            assertEquals(2 << 20, DmapCommandTest.number(r.out(), "fallback_bytes"), r.out());
            assertArrayEquals(Files.readAllBytes(src), Files.readAllBytes(file));
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(src);
        }
    }

    @Test
    void writeTextShowsTheTableAndAMatchAndARangePastTheEndExtendsTheFileWithItsReason() throws Exception {
        Path file = EXT4.file("write-text.bin"), src = EXT4.file("write-text-src.bin");
        try {
            Workloads.write(file, 0, 1 << 20, 34);
            Workloads.syncAndEvict(file);
            Workloads.write(src, 0, 2 << 20, 35);
            DmapCommandTest.Result r = DmapCommandTest.dmap("write", file.toString(), "--from", src.toString(), "--range", "512K:2560K");
            assertEquals(0, r.code(), r.err() + r.out());
            assertTrue(r.out().contains("direct") && r.out().contains("past the end of the file") && r.out().contains("match"), r.out());
            assertEquals(2560 << 10, Files.size(file), "the file system extended the file");
            byte[] got = Workloads.read(file, 512 << 10, 2 << 20);
            assertArrayEquals(Workloads.read(src, 0, 2 << 20), got);
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(src);
        }
    }

    @Test
    void mapWithWriteReadsThroughAWritableMappingDirectly() throws Exception {
        Path file = EXT4.file("map-write.bin");
        try {
            Workloads.write(file, 0, 2 << 20, 38);
            Workloads.syncAndEvict(file);
            DmapCommandTest.Result r = DmapCommandTest.dmap("map", file.toString(), "--write", "--json");
            assertEquals(0, r.code(), r.err() + r.out());
            assertEquals(2 << 20, DmapCommandTest.number(r.out(), "direct_bytes"), r.out());
            assertTrue(r.out().contains("\"checksum_ok\": true"), r.out());
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    void anUnalignedRangeInsideTheFileIsBadInput() throws Exception {
        Path file = EXT4.file("write-bad.bin"), src = EXT4.file("write-bad-src.bin");
        try {
            Workloads.write(file, 0, 1 << 20, 36);
            Workloads.write(src, 0, 1 << 20, 37);
            DmapCommandTest.Result r = DmapCommandTest.dmap("write", file.toString(), "--from", src.toString(), "--range", "100:8192");
            assertEquals(Dmap.INVALID_INPUT, r.code(), r.out() + r.err());
            assertTrue(r.err().contains("not whole pages"), r.err());
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(src);
        }
    }
}
