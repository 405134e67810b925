package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** dmap topology as a user runs it: the tree drawn, each pair answered, --json for programs. */
class TopologyCommandTest {
    @TempDir Path dir;

    static final String TREE = """
            host-bridge hb0
            switch sw0 under hb0
            place gpu0 under sw0
            place nic0 under sw0
            switch sw1 under hb0
            place gpu1 under sw1
            completer nic0 atomics32
            """;

    static Optional<JsonObject> find(JsonArray a, String key, String value) {
        return StreamSupport.stream(a.spliterator(), false).map(JsonElement::getAsJsonObject)
                .filter(o -> o.has(key) && !o.get(key).isJsonNull() && o.get(key).getAsString().equals(value)).findFirst();
    }

    static JsonObject pair(JsonArray pairs, String a, String b) {
        return StreamSupport.stream(pairs.spliterator(), false).map(JsonElement::getAsJsonObject)
                .filter(o -> o.get("from").getAsString().equals(a) && o.get("to").getAsString().equals(b)).findFirst()
                .orElseThrow(() -> new AssertionError("no pair " + a + " -> " + b + " in " + pairs));
    }

    @Test
    void jsonHasTheTreeAndAnAnswerForEachPair() throws Exception {
        Path t = Files.writeString(dir.resolve("lab.topology"), TREE);
        DmapCommandTest.Result r = DmapCommandTest.dmap("topology", "--topology", t.toString(), "--devices", "fpga0", "--json");
        assertEquals(0, r.code(), r.err());
        JsonObject j = JsonParser.parseString(r.out()).getAsJsonObject();
        for (String key : List.of("source", "cpu_routes_p2p", "problems", "nodes", "block_devices", "pairs")) {
            assertTrue(j.has(key), key + " missing from " + r.out());
        }
        assertEquals(t.toString(), j.get("source").getAsString());
        JsonArray nodes = j.getAsJsonArray("nodes");
        JsonObject sw0 = find(nodes, "name", "sw0").orElseThrow();
        assertEquals("switch upstream port", sw0.get("kind").getAsString());
        assertEquals("hb0", sw0.get("parent").getAsString());
        assertTrue(sw0.get("declared").getAsBoolean());
        assertEquals("sw0/0", find(nodes, "name", "gpu0").orElseThrow().get("parent").getAsString());
        for (String key : List.of("id", "class", "bars", "block_devices", "flags", "notes")) assertTrue(sw0.has(key), key);

        JsonArray pairs = j.getAsJsonArray("pairs");
        JsonObject direct = pair(pairs, "gpu0", "nic0");
        assertTrue(direct.get("p2p").getAsBoolean());
        assertEquals("direct", direct.get("path").getAsString());
        assertEquals(4, direct.get("distance").getAsInt());
        assertEquals("gpu0 > sw0/0 > sw0 > sw0/1 > nic0", direct.get("route").getAsString());
        assertTrue(!direct.get("atomics").getAsBoolean() && direct.get("atomics_why").getAsString().contains("64-bit"), direct.toString());
        JsonObject across = pair(pairs, "gpu0", "gpu1");
        assertTrue(!across.get("p2p").getAsBoolean() && across.get("path").getAsString().equals("none"), across.toString());
        assertEquals(6, across.get("distance").getAsInt());
        assertTrue(across.get("why").getAsString().contains("host bridge hb0"), across.toString());
        JsonObject unplaced = pair(pairs, "fpga0", "gpu0");
        assertTrue(unplaced.get("why").getAsString().contains("fpga0 is not placed"), unplaced.toString());
        // Each pair once: fpga0, gpu0, nic0, gpu1 and the machine's disks, two at a time.
        long disks = StreamSupport.stream(j.getAsJsonArray("block_devices").spliterator(), false)
                .filter(b -> b.getAsJsonObject().get("bytes").getAsLong() > 0).count();
        long n = 4 + disks;
        assertEquals(n * (n - 1) / 2, pairs.size(), r.out());
    }

    @Test
    void theTreeIsDrawnIndentedAndThePairsTabled() throws Exception {
        Path t = Files.writeString(dir.resolve("lab.topology"), TREE);
        DmapCommandTest.Result r = DmapCommandTest.dmap("topology", "--topology", t.toString());
        assertEquals(0, r.code(), r.err());
        List<String> lines = r.out().lines().toList();
        int hb = indent(lines, "hb0"), sw = indent(lines, "sw0"), port = indent(lines, "sw0/0"), gpu = indent(lines, "gpu0");
        assertTrue(hb < sw && sw < port && port < gpu, r.out());
        assertTrue(line(lines, "sw0/0").contains("switch downstream port"), r.out());
        assertTrue(line(lines, "nic0").contains("completes atomics32"), r.out());
        assertTrue(r.out().contains("FROM") && r.out().contains("DISTANCE") && r.out().contains("ATOMICS"), r.out());
        String gpus = lines.stream().filter(l -> l.trim().startsWith("gpu0") && l.contains("gpu1")).findFirst().orElseThrow();
        assertTrue(gpus.contains("none") && gpus.contains(" 6 ") && gpus.contains("hb0"), gpus);
    }

    @Test
    void aBadTopologyFileNamesItsLine() throws Exception {
        Path t = Files.writeString(dir.resolve("bad.topology"), "host-bridge hb0\nplace gpu0 under sw7\n");
        DmapCommandTest.Result r = DmapCommandTest.dmap("topology", "--topology", t.toString());
        assertEquals(Dmap.FAILED, r.code(), r.out());
        assertTrue(r.err().contains("bad.topology:2") && r.err().contains("sw7"), r.err());
    }

    private static String line(List<String> lines, String name) {
        return lines.stream().filter(l -> l.trim().startsWith(name + " ")).findFirst()
                .orElseThrow(() -> new AssertionError("no line for " + name + " in\n" + String.join("\n", lines)));
    }

    private static int indent(List<String> lines, String name) {
        String l = line(lines, name);
        return l.length() - l.stripLeading().length();
    }
}
