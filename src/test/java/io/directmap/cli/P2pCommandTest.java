package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.directmap.sys.FileHandle;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** dmap p2p as a user runs it: the plan, the bytes each way, the checksum, the JSON fields, bad input. */
class P2pCommandTest {
    @TempDir Path dir;

    record Result(int code, String out, String err) {}

    static Result dmap(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = Dmap.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Result(code, out.toString(), err.toString());
    }

    static JsonObject json(Result r) {
        assertEquals(0, r.code(), r.err());
        return JsonParser.parseString(r.out()).getAsJsonObject();
    }

    @Test
    void jsonSaysEveryByteWentPeerToPeerAndMatched() {
        int handles = FileHandle.openCount();
        JsonObject j = json(dmap("p2p", "--from", "gpu1", "--to", "nic0", "--size", "4M", "--json"));
        assertEquals(4 << 20, j.get("bytes").getAsLong());
        assertEquals(4 << 20, j.get("p2p_bytes").getAsLong());
        assertEquals(0, j.get("bounce_bytes").getAsLong());
        assertTrue(j.get("checksum_ok").getAsBoolean());
        assertEquals(j.get("checksum_exporter").getAsString(), j.get("checksum_importer").getAsString());
        assertTrue(j.get("device_file").getAsString().matches("/proc/\\d+/fd/\\d+"), j.toString());
        long covered = 0;
        for (JsonElement e : j.getAsJsonArray("segments")) {
            JsonObject s = e.getAsJsonObject();
            assertEquals("direct", s.get("path").getAsString(), s.toString());
            assertEquals(j.get("device_file").getAsString(), s.get("block_device").getAsString(), "the peer is the exporter's device file");
            assertEquals(Set.of("start", "end", "length", "path", "block_device", "device_offset", "bus_address", "route"),
                    new TreeSet<>(s.keySet()), "the segment shape of dmap map");
            covered += s.get("length").getAsLong();
        }
        assertEquals(4 << 20, covered, "the segments cover the range");
        assertEquals(handles, FileHandle.openCount(), "the memfd and the device file were closed");
    }

    @Test
    void withoutAPeerToPeerPathTheSameBytesBounceAndTheReasonIsGiven() throws Exception {
        Path topo = Files.writeString(dir.resolve("topology.txt"), "no-p2p gpu1 nic0\n");
        JsonObject j = json(dmap("p2p", "--size", "4M", "--topology", topo.toString(), "--json"));
        assertEquals(0, j.get("p2p_bytes").getAsLong());
        assertEquals(4 << 20, j.get("bounce_bytes").getAsLong());
        assertTrue(j.get("checksum_ok").getAsBoolean(), "the bounced bytes are the same bytes");
        for (JsonElement e : j.getAsJsonArray("segments")) {
            JsonObject s = e.getAsJsonObject();
            assertEquals("fallback", s.get("path").getAsString());
            assertEquals("exporter", s.get("refused_by").getAsString());
            assertEquals("no_p2p_path", s.get("reason").getAsString());
            assertTrue(s.get("detail").getAsString().contains(topo.toString()), s.toString());
        }
    }

    @Test
    void textShowsThePlanTheBytesEachWayAndTheChecksum() throws Exception {
        Path topo = Files.writeString(dir.resolve("bar.txt"), "bar gpu1 2M\n");
        Result r = dmap("p2p", "--size", "4M", "--topology", topo.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("gpu1 exports 4 MiB as /proc/"), r.out());
        assertTrue(r.out().contains("direct") && r.out().contains("fallback") && r.out().contains("aperture"), r.out());
        assertTrue(r.out().contains("4 MiB from gpu1 to nic0: 2 MiB peer to peer (50.0%), 2 MiB bounced through host memory"), r.out());
        assertTrue(r.out().contains(": match"), r.out());
    }

    @Test
    void badInputIsOneLineAndExitTwo() {
        Result same = dmap("p2p", "--from", "gpu1", "--to", "gpu1");
        assertEquals(Dmap.INVALID_INPUT, same.code());
        assertTrue(same.err().contains("give two devices"), same.err());
        Result zero = dmap("p2p", "--size", "0");
        assertEquals(Dmap.INVALID_INPUT, zero.code());
        assertTrue(zero.err().contains("--size"), zero.err());
        Result tooBig = dmap("p2p", "--size", "2G");
        assertEquals(Dmap.INVALID_INPUT, tooBig.code());
        assertTrue(tooBig.err().contains("nic0") && tooBig.err().contains("does not fit"), tooBig.err());
        Result kind = dmap("p2p", "--to", "disk0");
        assertEquals(Dmap.INVALID_INPUT, kind.code());
        assertTrue(kind.err().contains("gpuN, nicN or fpgaN"), kind.err());
    }
}
