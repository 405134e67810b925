package io.directmap.tools.bench;

import io.directmap.tools.Commands;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * fio as the bench's baseline: one fio process (jobs are threads, run one after another) reading
 * given byte ranges of one file or block device with O_DIRECT through io_uring, and what it said
 * it read, taken from its JSON report.
 *
 * <p>Why spans and not a replay of DirectMap's request list: fio 3.33's {@code read_iolog} replay at
 * iodepth D leaves the last D-1 completions out of {@code io_bytes} and {@code runtime} (measured
 * here: 121 of 128 4 MiB reads counted at depth 8), so its figure would be for fewer bytes over a
 * shorter time. One job per contiguous span, stonewalled, reads exactly the bytes in the same order;
 * it differs from DirectMap's single queue only in that fio's queue drains between spans.
 *
 * <p>{@code invalidate=0}: fio's default flushes the file's cache (for a block device, BLKFLSBUF
 * of the whole device) before each job, a cost no other row pays, and it would undo the cache
 * state (hot, half) the bench prepared.
 */
final class Fio {
    /** What fio read: bytes (its io_bytes), seconds (its runtime), CPU seconds (its usr+sys). */
    record Outcome(long bytes, double seconds, double cpuSeconds) {}

    private Fio() {}

    /**
     * Reads each [offset, offset+length) of target in order, request bytes at a time, depth deep.
     * A span that is not a whole number of requests gets a second job for its tail, in one request,
     * since fio drops a tail shorter than bs.
     */
    static Outcome read(Path target, List<long[]> spans, long request, int depth) throws IOException {
        StringBuilder job = new StringBuilder("[global]\nfilename=").append(escape(target.toString()))
                .append("\nrw=read\ndirect=1\nioengine=io_uring\ninvalidate=0\nthread\nstonewall\niodepth=").append(depth).append('\n');
        int n = 0;
        for (long[] s : spans) {
            long whole = s[1] / request * request, tail = s[1] - whole;
            if (whole > 0) section(job, n++, s[0], whole, request);
            if (tail > 0) section(job, n++, s[0] + whole, tail, tail);
        }
        Path jobFile = Files.createTempFile("dmap-bench", ".fio");
        try {
            Files.writeString(jobFile, job);
            return parse(Commands.run("fio", "--readonly", "--output-format=json", jobFile.toString()));
        } finally {
            Files.deleteIfExists(jobFile);
        }
    }

    private static void section(StringBuilder job, int n, long offset, long length, long bs) {
        job.append("[span").append(n).append("]\noffset=").append(offset).append("\nsize=").append(length)
                .append("\nbs=").append(bs).append('\n');
    }

    /** fio takes a job file's value to the end of the line; a ':' would split filename into several files. */
    private static String escape(String path) {
        if (path.contains("\n")) throw new IllegalArgumentException(path + ": a path with a newline cannot go in a fio job file");
        return path.replace(":", "\\:");
    }

    /** Sums the jobs of fio's --output-format=json report (they ran one after another). */
    static Outcome parse(String output) throws IOException {
        int start = output.indexOf('{');
        if (start < 0) throw new IOException("fio printed no JSON report: " + output.strip());
        Object root = new Reader(output, start).value();
        long bytes = 0;
        double runtimeMs = 0, cpuS = 0;
        for (Object o : list(field(root, "jobs"))) {
            if (number(field(o, "error")) != 0) {
                throw new IOException("fio job " + field(o, "jobname") + " failed with error " + (long) number(field(o, "error")));
            }
            Object read = field(o, "read");
            double rt = number(field(read, "runtime"));
            bytes += (long) number(field(read, "io_bytes"));
            runtimeMs += rt;
            cpuS += (number(field(o, "usr_cpu")) + number(field(o, "sys_cpu"))) / 100.0 * number(field(o, "job_runtime")) / 1000.0;
        }
        // fio's runtime is in whole milliseconds: a read under 1 ms counts as 1 ms rather than infinitely fast.
        return new Outcome(bytes, Math.max(1, runtimeMs) / 1000.0, cpuS);
    }

    private static Object field(Object o, String name) throws IOException {
        if (!(o instanceof Map<?, ?> m) || !m.containsKey(name)) throw new IOException("fio's JSON report has no \"" + name + "\" where expected");
        return m.get(name);
    }

    private static List<?> list(Object o) throws IOException {
        if (!(o instanceof List<?> l)) throw new IOException("fio's JSON report: expected a list, found " + o);
        return l;
    }

    private static double number(Object o) throws IOException {
        if (!(o instanceof Double d)) throw new IOException("fio's JSON report: expected a number, found " + o);
        return d;
    }

    /** A small JSON reader (RFC 8259): objects as maps, arrays as lists, numbers as Double. */
    static final class Reader {
        private final String s;
        private int i;

        Reader(String s, int start) {
            this.s = s;
            this.i = start;
        }

        Object value() throws IOException {
            skip();
            if (i >= s.length()) throw error("unexpected end");
            char c = s.charAt(i);
            switch (c) {
                case '{' -> {
                    i++;
                    Map<String, Object> m = new LinkedHashMap<>();
                    skip();
                    if (peek('}')) return m;
                    do {
                        skip();
                        if (i >= s.length() || s.charAt(i) != '"') throw error("expected a name");
                        String k = string();
                        skip();
                        expect(':');
                        m.put(k, value());
                        skip();
                    } while (peekComma());
                    expect('}');
                    return m;
                }
                case '[' -> {
                    i++;
                    List<Object> l = new ArrayList<>();
                    skip();
                    if (peek(']')) return l;
                    do {
                        l.add(value());
                        skip();
                    } while (peekComma());
                    expect(']');
                    return l;
                }
                case '"' -> { return string(); }
                default -> {
                    if (s.startsWith("true", i)) { i += 4; return Boolean.TRUE; }
                    if (s.startsWith("false", i)) { i += 5; return Boolean.FALSE; }
                    if (s.startsWith("null", i)) { i += 4; return null; }
                    int from = i;
                    while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
                    if (from == i) throw error("unexpected '" + c + "'");
                    try {
                        return Double.parseDouble(s.substring(from, i));
                    } catch (NumberFormatException e) {
                        throw error("bad number " + s.substring(from, i));
                    }
                }
            }
        }

        private String string() throws IOException {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (i < s.length() && s.charAt(i) != '"') {
                char c = s.charAt(i++);
                if (c != '\\') { b.append(c); continue; }
                if (i >= s.length()) break;
                char e = s.charAt(i++);
                switch (e) {
                    case 'n' -> b.append('\n');
                    case 't' -> b.append('\t');
                    case 'r' -> b.append('\r');
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'u' -> {
                        if (i + 4 > s.length()) throw error("bad \\u escape");
                        b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                    }
                    default -> b.append(e);
                }
            }
            expect('"');
            return b.toString();
        }

        private void skip() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++;
        }

        private boolean peek(char c) {
            if (i < s.length() && s.charAt(i) == c) { i++; return true; }
            return false;
        }

        private boolean peekComma() {
            skip();
            return peek(',');
        }

        private void expect(char c) throws IOException {
            if (!peek(c)) throw error("expected '" + c + "'");
        }

        private IOException error(String what) {
            return new IOException("fio's JSON report is not JSON at character " + i + ": " + what);
        }
    }
}
