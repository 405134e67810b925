package io.directmap.tools.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * fio's report as fio 3.33 printed it here (the resources are its standard output, unedited):
 * the bench's two-span job file on a 33 MiB file (io_uring, O_DIRECT, depth 8), and a psync job
 * with iodepth=4, for which fio prints a note before the report.
 */
class FioTest {
    private static String resource(String name) throws IOException {
        try (InputStream in = FioTest.class.getResourceAsStream(name)) {
            if (in == null) throw new IOException(name + ": no such test resource next to " + FioTest.class.getName());
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @Test
    void aRealReportSumsItsStonewalledJobs() throws IOException {
        // span0: 32 MiB in 4 KiB reads, runtime 145 ms, job_runtime 144 ms, usr 0%, sys 41.666667%;
        // span1: the 12 KiB tail in one read, runtime 1 ms, no CPU.
        Fio.Outcome o = Fio.parse(resource("fio-3.33-two-spans.json"));
        assertEquals((32L << 20) + 12288, o.bytes());
        assertEquals(0.146, o.seconds(), 1e-12);
        assertEquals(0.41666667 * 0.144, o.cpuSeconds(), 1e-12);
    }

    @Test
    void aNoteBeforeTheReportIsSkipped() throws IOException {
        String out = resource("fio-3.33-after-a-note.json");
        assertTrue(out.startsWith("note: both iodepth >= 1 and synchronous I/O engine are selected"), "the resource starts with fio's note");
        Fio.Outcome o = Fio.parse(out);
        assertEquals(16L << 20, o.bytes());
        assertEquals(0.005, o.seconds(), 1e-12);
        assertEquals(0.75 * 0.004, o.cpuSeconds(), 1e-12);
    }

    @Test
    void aBraceInAWarningIsNotTakenForTheReport() throws IOException {
        String out = "fio: option <{bad}> ignored\n" + resource("fio-3.33-two-spans.json") + "fio: file hash not empty on exit\n";
        assertEquals((32L << 20) + 12288, Fio.parse(out).bytes());
    }

    @Test
    void aBareNanInAFieldTheBenchDoesNotReadIsTolerated() throws IOException {
        String out = resource("fio-3.33-two-spans.json").replace("\"fio version\" : \"fio-3.33\",", "\"fio version\" : \"fio-3.33\", \"odd\" : -nan,");
        assertTrue(out.contains("-nan"));
        assertEquals((32L << 20) + 12288, Fio.parse(out).bytes());
    }

    @Test
    void outputWithoutAReportFailsShowingWhatFioPrinted() {
        IOException e = assertThrows(IOException.class, () -> Fio.parse("fio: failed parsing filename=/dev/nope\nfio: job global dropped\n"));
        assertTrue(e.getMessage().contains("no JSON report") && e.getMessage().contains("fio: failed parsing filename=/dev/nope")
                && e.getMessage().contains("fio: job global dropped"), e.getMessage());
        e = assertThrows(IOException.class, () -> Fio.parse(""));
        assertTrue(e.getMessage().contains("no JSON report") && e.getMessage().contains("(nothing)"), e.getMessage());
    }

    @Test
    void aCutReportFailsShowingWhatFioPrinted() throws IOException {
        String full = resource("fio-3.33-two-spans.json");
        String cut = full.substring(0, full.indexOf("\"jobname\" : \"span1\""));
        IOException e = assertThrows(IOException.class, () -> Fio.parse(cut));
        assertTrue(e.getMessage().startsWith("fio's JSON report is not JSON") && e.getMessage().contains("\"fio version\" : \"fio-3.33\""),
                e.getMessage());
    }

    @Test
    void aMissingFieldIsNamed() {
        IOException e = assertThrows(IOException.class, () -> Fio.parse("{\"jobs\": [{\"jobname\": \"span0\", \"error\": 0}]}"));
        assertTrue(e.getMessage().contains("\"read\""), e.getMessage());
        e = assertThrows(IOException.class, () -> Fio.parse("{\"jobs\": [{\"jobname\": \"span0\", \"error\": \"EIO\"}]}"));
        assertTrue(e.getMessage().contains("expected a number") && e.getMessage().contains("EIO"), e.getMessage());
    }
}
