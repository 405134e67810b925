package io.directmap.tools.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The bench's own checks, without running it: fio's report read from its JSON, and a row that read other bytes refused. */
class BenchTest {
    @Test
    void fioReportIsReadFromItsJsonNotFromPatterns() throws Exception {
        // Two stonewalled jobs, with a warning line before the JSON and a nested "read" in each job's options.
        String out = "fio: note: something\n{\"fio version\": \"fio-3.33\", \"jobs\": ["
                + "{\"jobname\": \"span0\", \"error\": 0, \"job options\": {\"rw\": \"read\"},"
                + " \"read\": {\"io_bytes\": 8388608, \"bw_bytes\": 1, \"runtime\": 4, \"clat_ns\": {\"percentile\": {\"1.000000\": 5}}},"
                + " \"write\": {\"io_bytes\": 0, \"runtime\": 0}, \"job_runtime\": 5, \"usr_cpu\": 10.0, \"sys_cpu\": 30.0},"
                + "{\"jobname\": \"span1\", \"error\": 0, \"read\": {\"io_bytes\": 4096, \"runtime\": 1},"
                + " \"job_runtime\": 1, \"usr_cpu\": 0, \"sys_cpu\": 100.0, \"name\": \"a \\\"quoted\\\" \\u00e9\"}]}\n";
        Fio.Outcome o = Fio.parse(out);
        assertEquals(8388608 + 4096, o.bytes());
        assertEquals(0.005, o.seconds(), 1e-9);
        assertEquals(0.4 * 0.005 + 1.0 * 0.001, o.cpuSeconds(), 1e-9);
        java.io.IOException e = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                () -> Fio.parse("{\"jobs\": [{\"jobname\": \"span0\", \"error\": 5, \"read\": {}}]}"));
        assertTrue(e.getMessage().contains("span0") && e.getMessage().contains("error 5"), e.getMessage());
    }

    @Test
    void aRowThatReadOtherBytesFailsTheBenchWithWhatItRead() {
        Path f = Path.of("/data/bench.bin");
        long size = 32 << 20;
        Bench.Result fioShort = new Bench.Result("fio-ranges", "cold", 1, 0.1, 0, 4 << 20, 8, size - (28 << 20), size - (28 << 20), 1, null);
        String why = Bench.bytesMismatch(fioShort, f, size, "/dev/loop3", size);
        assertTrue(why != null && why.contains("fio-ranges") && why.contains("read 4194304 bytes, not 33554432")
                && why.contains("/dev/loop3") && why.contains("/data/bench.bin"), why);
        Bench.Result directOther = new Bench.Result("direct", "hot", 1, 0.1, 0, 4 << 20, 8, size, size - 4096, 1, null);
        why = Bench.bytesMismatch(directOther, f, size, "/dev/loop3", size);
        assertTrue(why != null && why.contains("direct row") && why.contains("fio-ranges reads 33554432"), why);
        Bench.Result same = new Bench.Result("fio-file", "half", 1, 0.1, 0, 4 << 20, 8, size, size, 1, null);
        assertEquals(null, Bench.bytesMismatch(same, f, size, "/dev/loop3", size), "the same bytes pass");
        Bench.Result skipped = new Bench.Result("fio-file", "half", Double.NaN, Double.NaN, 0, 4 << 20, 8, 0, 0, 0, "fio is not installed");
        assertEquals(null, Bench.bytesMismatch(skipped, f, size, "/dev/loop3", size), "a skipped row read nothing, and says why");
    }
}
