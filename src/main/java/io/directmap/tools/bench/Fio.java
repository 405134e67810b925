package io.directmap.tools.bench;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import com.google.gson.stream.JsonReader;
import io.directmap.tools.Commands;
import java.io.IOException;
import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

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
        return run(target, spans, request, depth, false);
    }

    /**
     * Writes [0, size) of the file target with O_DIRECT, request bytes at a time, depth deep, one
     * process, then fsyncs it (end_fsync: the time counts until the bytes are durable); fallocate
     * and truncation off, so the file keeps its blocks. What it writes is fio's own buffer pattern.
     */
    static Outcome write(Path target, long size, long request, int depth) throws IOException {
        return run(target, List.<long[]>of(new long[] {0, size}), request, depth, true);
    }

    private static Outcome run(Path target, List<long[]> spans, long request, int depth, boolean write) throws IOException {
        StringBuilder job = new StringBuilder("[global]\nfilename=").append(escape(target.toString()))
                .append(write ? "\nrw=write\nfallocate=none\nend_fsync=1" : "\nrw=read")
                .append("\ndirect=1\nioengine=io_uring\ninvalidate=0\nthread\nstonewall\niodepth=").append(depth).append('\n');
        int n = 0;
        for (long[] s : spans) {
            long whole = s[1] / request * request, tail = s[1] - whole;
            if (whole > 0) section(job, n++, s[0], whole, request);
            if (tail > 0) section(job, n++, s[0] + whole, tail, tail);
        }
        Path jobFile = Files.createTempFile("dmap-bench", ".fio");
        try {
            Files.writeString(jobFile, job);
            String out = write ? Commands.run("fio", "--output-format=json", jobFile.toString())
                    : Commands.run("fio", "--readonly", "--output-format=json", jobFile.toString());
            return parse(out, write);
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

    /**
     * Sums the jobs of fio's --output-format=json report (they ran one after another). fio prints
     * some notes and warnings on standard output before the report ("note: both iodepth >= 1 and
     * synchronous I/O engine are selected ..."), so the report is taken, as fio's users take it,
     * from the first line that starts with '{'; what follows the report's closing brace is left.
     */
    static Outcome parse(String output) throws IOException {
        return parse(output, false);
    }

    /** As {@link #parse(String)}; for writes the write side, timed by each job's whole runtime (its end_fsync included). */
    static Outcome parse(String output, boolean write) throws IOException {
        JsonElement root;
        // JsonParser reads leniently: a field we do not read that fio printed oddly (a bare nan) does not fail the bench.
        try (JsonReader in = new JsonReader(new StringReader(report(output)))) {
            root = JsonParser.parseReader(in);
        } catch (JsonParseException e) {
            throw new IOException("fio's JSON report is not JSON (" + e.getMessage() + "); fio printed:\n" + shown(output), e);
        }
        long bytes = 0;
        double runtimeMs = 0, cpuS = 0;
        for (JsonElement o : array(field(root, "jobs"))) {
            if (number(field(o, "error")) != 0) {
                throw new IOException("fio job " + text(field(o, "jobname")) + " failed with error " + (long) number(field(o, "error")));
            }
            JsonElement read = field(o, write ? "write" : "read");
            bytes += whole(field(read, "io_bytes"));
            runtimeMs += number(write ? field(o, "job_runtime") : field(read, "runtime"));
            cpuS += (number(field(o, "usr_cpu")) + number(field(o, "sys_cpu"))) / 100.0 * number(field(o, "job_runtime")) / 1000.0;
        }
        // fio's runtime is in whole milliseconds: a read under 1 ms counts as 1 ms rather than infinitely fast.
        return new Outcome(bytes, Math.max(1, runtimeMs) / 1000.0, cpuS);
    }

    /** output from its first line that starts with '{'. */
    private static String report(String output) throws IOException {
        int start = output.startsWith("{") ? 0 : output.indexOf("\n{");
        if (start < 0) throw new IOException("fio printed no JSON report (no line starts with '{'); it printed:\n" + shown(output));
        return output.substring(start);
    }

    /** What fio printed, for a message: all of it if short, else its head and its tail. */
    private static String shown(String output) {
        String s = output.strip();
        if (s.isEmpty()) return "(nothing)";
        return s.length() <= 2000 ? s : s.substring(0, 1000) + "\n[... " + (s.length() - 2000) + " characters ...]\n" + s.substring(s.length() - 1000);
    }

    private static JsonElement field(JsonElement o, String name) throws IOException {
        if (!(o instanceof JsonObject m) || !m.has(name)) throw new IOException("fio's JSON report has no \"" + name + "\" where expected");
        return m.get(name);
    }

    private static JsonArray array(JsonElement o) throws IOException {
        if (!(o instanceof JsonArray a)) throw new IOException("fio's JSON report: expected a list, found " + o);
        return a;
    }

    private static double number(JsonElement o) throws IOException {
        if (!(o instanceof JsonPrimitive p) || !p.isNumber()) throw new IOException("fio's JSON report: expected a number, found " + o);
        return p.getAsDouble();
    }

    /** A count of bytes, exact (a double would round past 2^53). */
    private static long whole(JsonElement o) throws IOException {
        number(o);
        try {
            return o.getAsLong();
        } catch (NumberFormatException e) {
            throw new IOException("fio's JSON report: expected a whole number, found " + o, e);
        }
    }

    private static String text(JsonElement o) {
        return o instanceof JsonPrimitive p && p.isString() ? p.getAsString() : o.toString();
    }
}
