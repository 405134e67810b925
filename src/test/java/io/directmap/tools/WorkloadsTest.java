package io.directmap.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A seed names the same bytes forever: tests and recorded runs rely on it. The digests were taken
 * from files written by Workloads before it used lang.Xorshift (its own xorshift loop).
 */
class WorkloadsTest {
    @TempDir
    Path dir;

    private String sha256(Path f) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f)));
    }

    private void same(long seed, long offset, long length, boolean compressible, String digest) throws Exception {
        Path f = dir.resolve(seed + "-" + offset + "-" + length + "-" + compressible);
        if (compressible) Workloads.writeCompressible(f, offset, length, seed); else Workloads.write(f, offset, length, seed);
        assertEquals(offset + length, Files.size(f));
        assertEquals(digest, sha256(f), "seed " + seed + ", " + length + " bytes at " + offset + (compressible ? ", compressible" : ""));
    }

    @Test
    void aSeedGivesTheBytesItAlwaysGave() throws Exception {
        same(0, 0, 5, false, "377a23f52c6b357696238c3318f677a082dd3430bb6691042bd550a5cda28ebb");
        same(0, 3, 21, false, "e3668f6e231855623f9788083d51d755e404ffdb126bedb637b7c50163548413");
        same(0, 3, 21, true, "c0f00fdbef76eb8a1760e6e6aefdcde942e4206c982381dd15fb6055eb3ed948");
        // 1 MiB + 13: past one write chunk, with a tail shorter than a long.
        same(42, 0, 1048589, false, "f823a35f60cad76eb2941bb3f540148fec977bd5dd25fd5a5c96fcaae023e114");
        same(42, 0, 1048589, true, "71f73a35432a8fc83ed5486b9f92ec2665e1add313bb37735561b4662a45103e");
        same(-1, 0, 5242887, false, "4da2b90033743ec5267604e51ba5ff41d3fa4709c177e0a1a1cc50f98773dbda");
    }
}
