package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.sys.ScratchFilesystem;
import io.directmap.testing.ScratchFs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** dmap bench as a user runs it: every row of the JSON schema, the page cache untouched by the direct path, the plot. */
class BenchCommandTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @TempDir Path dir;

    /** The JSON object of the row for method and cache. */
    static String row(String json, String method, String cache) {
        Matcher m = Pattern.compile("\\{[^{}]*\"method\": \"" + method + "\",\\s*\"cache\": \"" + cache + "\"[^{}]*\\}").matcher(json);
        assertTrue(m.find(), method + "/" + cache + " in " + json);
        return m.group();
    }

    static double field(String row, String name) {
        Matcher m = Pattern.compile("\"" + name + "\": (-?[0-9.]+)").matcher(row);
        assertTrue(m.find(), name + " in " + row);
        return Double.parseDouble(m.group(1));
    }

    @Test
    void jsonHasEveryMethodAndTheDirectPathLeavesTheCacheAlone() throws Exception {
        Path f = EXT4.file("bench.bin");
        Workloads.write(f, 0, 32 << 20, 9);
        Path plot = dir.resolve("bench.html");
        try {
            DmapCommandTest.Result r = DmapCommandTest.dmap("bench", f.toString(), "--caches", "cold,half", "--repeat", "1",
                    "--json", "--plot", plot.toString());
            assertEquals(Dmap.OK, r.code(), r.err());
            for (String cache : List.of("cold", "half")) {
                for (String method : Bench.METHODS) {
                    String row = row(r.out(), method, cache);
                    assertTrue(field(row, "gib_per_s") > 0, row);
                    assertTrue(field(row, "cpu_s_per_gib") >= 0, row);
                    assertTrue(field(row, "request_bytes") > 0 && field(row, "depth") >= 1, row);
                    assertTrue(row.contains("\"cache_growth_bytes\""), row);
                }
                assertEquals(1.0, field(row(r.out(), "fio", cache), "vs_fio"), "fio is its own baseline");
                assertEquals(0, field(row(r.out(), "direct", cache), "cache_growth_bytes"), "the direct path does not fill the cache");
            }
            assertEquals(32 << 20, field(row(r.out(), "java-read", "cold"), "cache_growth_bytes"), "a buffered read fills it");
            assertEquals(16 << 20, field(row(r.out(), "fallback", "half"), "cache_growth_bytes"), "the fallback fills the cold half");
            String html = Files.readString(plot);
            assertTrue(html.contains("<svg") && html.contains("half file") && html.contains("mixed"), "the plot has the table");
        } finally {
            Files.deleteIfExists(f);
        }
    }

    @Test
    void badInputIsOneLineThatSaysWhatToDo() {
        DmapCommandTest.Result r = DmapCommandTest.dmap("bench", dir.resolve("nope.bin").toString());
        assertEquals(Dmap.INVALID_INPUT, r.code());
        assertTrue(r.err().contains("nope.bin") && r.err().contains("8 MiB") && r.err().lines().count() == 1, r.err());
        r = DmapCommandTest.dmap("bench", "--caches", "lukewarm");
        assertEquals(Dmap.INVALID_INPUT, r.code());
        assertTrue(r.err().contains("lukewarm") && r.err().contains("cold, hot, half"), r.err());
    }
}
