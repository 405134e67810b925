package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import java.io.IOException;
import java.io.StringReader;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The --json writer's output is JSON that a strict parser (Gson) reads back to the same values. */
class JsonTest {
    private static JsonElement strict(String json) throws IOException {
        try (JsonReader in = new JsonReader(new StringReader(json))) {
            in.setStrictness(Strictness.STRICT);
            JsonElement e = new com.google.gson.Gson().getAdapter(JsonElement.class).read(in);
            assertEquals(com.google.gson.stream.JsonToken.END_DOCUMENT, in.peek(), "one value, nothing after it");
            return e;
        }
    }

    @Test
    void everyKindOfValueReadsBackStrictly() throws IOException {
        String awkward = "a \"quoted\" \\ path\nwith\ttabs\r, \b\f\u0001\u001f, \u00e9, \u2028 and \ud83d\ude00";
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("text", awkward);
        m.put(awkward, "as a key");
        m.put("long", Long.MAX_VALUE);
        m.put("int", -7);
        m.put("double", 0.1);
        m.put("nan", Double.NaN);
        m.put("infinite", Double.NEGATIVE_INFINITY);
        m.put("yes", true);
        m.put("none", null);
        m.put("path", Path.of("/data/a b.bin"));
        m.put("empty map", Map.of());
        m.put("empty list", List.of());
        m.put("nested", List.of(Map.of("k", List.of(1, 2)), List.of()));
        String out = Json.write(m);
        assertTrue(out.endsWith("}\n"), out);
        JsonObject o = strict(out).getAsJsonObject();
        assertEquals(awkward, o.get("text").getAsString());
        assertEquals("as a key", o.get(awkward).getAsString());
        assertEquals(Long.MAX_VALUE, o.get("long").getAsLong());
        assertEquals(-7, o.get("int").getAsInt());
        assertEquals("0.100000", o.get("double").getAsJsonPrimitive().getAsNumber().toString(), "six significant digits");
        assertTrue(o.get("nan").isJsonNull() && o.get("infinite").isJsonNull(), "NaN and infinities are null: JSON has no such numbers");
        assertTrue(o.get("yes").getAsBoolean());
        assertTrue(o.get("none").isJsonNull());
        assertEquals("/data/a b.bin", o.get("path").getAsString());
        assertEquals(0, o.get("empty map").getAsJsonObject().size());
        assertEquals(0, o.get("empty list").getAsJsonArray().size());
        assertEquals(2, o.get("nested").getAsJsonArray().get(0).getAsJsonObject().get("k").getAsJsonArray().get(1).getAsInt());
        assertEquals(List.copyOf(m.keySet()), List.copyOf(o.keySet()), "keys in the map's order");
    }
}
