package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.ToNumberPolicy;
import io.directmap.fs.PinInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** dmap pins reads the records of pin holders as dmap stats reads snapshots: live ones listed, stale ones named and removed. */
class PinsCommandTest {
    static final Gson GSON = new GsonBuilder().setObjectToNumberStrategy(ToNumberPolicy.LONG_OR_DOUBLE).create();

    @TempDir Path tmp;
    Path run;

    @BeforeEach
    void statsDir() {
        run = tmp.resolve("run-directmap");
        System.setProperty(StatsFiles.DIR_PROPERTY, run.toString());
    }

    @AfterEach
    void back() {
        System.clearProperty(StatsFiles.DIR_PROPERTY);
    }

    static PinInfo pin(String file) {
        return new PinInfo(Path.of(file), "7:3", 12, 0, 4 << 20, "gpu0", System.currentTimeMillis() - 2500, 2,
                List.of("gpu0"), true, 3, "open for writing by pid 1 (dd) refused");
    }

    @Test
    void listsLivePinsAndRemovesTheRecordsOfGoneProcesses() throws Exception {
        Path pins = Files.createDirectories(PinFiles.dir(), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        long me = ProcessHandle.current().pid();
        Files.writeString(pins.resolve(me + "-1.json"), Json.write(PinFiles.snapshot(List.of(pin("/mnt/a.bin")), me,
                StatsFiles.startTime(me).orElseThrow(), "dmap pin /mnt/a.bin")));
        // A pid far above pid_max: no such process, so its record is stale.
        Path gone = pins.resolve("4999999-1.json");
        Files.writeString(gone, Json.write(PinFiles.snapshot(List.of(pin("/mnt/b.bin")), 4999999, 1, "dmap pin /mnt/b.bin")));

        DmapCommandTest.Result text = DmapCommandTest.dmap("pins");
        assertEquals(Dmap.OK, text.code(), text.err());
        assertTrue(text.out().contains("ignored " + gone + ": process 4999999 is gone; the stale file was removed"), text.out());
        assertTrue(text.out().contains("/mnt/a.bin") && text.out().contains("gpu0") && text.out().contains("[0 B, 4 MiB)"), text.out());
        assertFalse(Files.exists(gone));

        DmapCommandTest.Result json = DmapCommandTest.dmap("pins", "--json");
        @SuppressWarnings("unchecked")
        Map<String, Object> m = GSON.fromJson(json.out(), Map.class);
        List<?> listed = (List<?>) m.get("pins");
        assertEquals(1, listed.size());
        Map<?, ?> p = (Map<?, ?>) listed.getFirst();
        assertEquals(me, ((Number) p.get("pid")).longValue());
        assertEquals("/mnt/a.bin", p.get("file"));
        assertEquals(3L, ((Number) p.get("refused")).longValue());
        assertTrue(((Number) p.get("age_ms")).longValue() >= 2500);
    }

    @Test
    void noPinsSaysSo() {
        DmapCommandTest.Result r = DmapCommandTest.dmap("pins");
        assertEquals(Dmap.OK, r.code());
        assertTrue(r.out().startsWith("no pins on this host"), r.out());
    }
}
