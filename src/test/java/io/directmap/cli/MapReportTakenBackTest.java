package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A map report whose mapping the file system took back before its decision time could be read
 * (DeviceAccess.decisionNanos() empty): it prints and writes JSON with the decision unknown, and the
 * normal case prints as it always did.
 */
class MapReportTakenBackTest {
    private static MapReport report(double decisionSeconds) {
        return new MapReport(Path.of("/data.bin"), "ext4", 8192, "gpu0", 0, 8192, 0, 8192, decisionSeconds, 0.002,
                List.of(), 0x1234, 0x1234, true);
    }

    private static String print(MapReport r) {
        StringWriter s = new StringWriter();
        try (PrintWriter out = new PrintWriter(s)) {
            r.print(out);
        }
        return s.toString();
    }

    @Test
    void aDecisionTakenBackIsReportedUnknown() {
        MapReport r = report(Double.NaN);
        String text = print(r);
        assertTrue(text.contains("time     decision unknown (the file system took the mapping back), DMA 2.0 ms"), text);
        assertNull(r.toJson().get("decision_seconds"), "JSON says null, not NaN");
        assertTrue(Json.write(r.toJson()).contains("\"decision_seconds\": null") || Json.write(r.toJson()).contains("\"decision_seconds\":null"),
                Json.write(r.toJson()));
    }

    @Test
    void aKnownDecisionPrintsAsBefore() {
        MapReport r = report(0.000_25);
        assertTrue(print(r).contains("time     decision 0.250 ms, DMA 2.0 ms, "), print(r));
        assertEquals(0.000_25, r.toJson().get("decision_seconds"));
    }
}
