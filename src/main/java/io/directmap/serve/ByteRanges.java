package io.directmap.serve;

import java.util.ArrayList;
import java.util.List;

/**
 * A {@code Range: bytes=...} header (RFC 9110 section 14.1.2) against a file's length, as one of
 * three outcomes: the whole file (no header, another unit, a header that does not parse, or more
 * ranges than we serve, all of which a server may ignore), the satisfiable ranges in the order
 * asked, or none satisfiable (416).
 */
sealed interface ByteRanges {
    /** The most ranges one request may ask for; more, and the header is ignored (as nginx's max_ranges). */
    int MOST = 16;

    /** Serve the whole file (200). */
    record Whole() implements ByteRanges {}

    /** Serve these ranges (206), each [start, end) inside the file, in the order asked. */
    record Parts(List<Range> ranges) implements ByteRanges {}

    /** Nothing asked for lies inside the file (416, with {@code Content-Range: bytes *}/length). */
    record Unsatisfiable() implements ByteRanges {}

    /** One range [start, end) of file offsets. */
    record Range(long start, long end) {
        long length() { return end - start; }

        /** The Content-Range value: "bytes first-last/length". */
        String contentRange(long fileLength) {
            return "bytes " + start + "-" + (end - 1) + "/" + fileLength;
        }
    }

    static ByteRanges parse(String header, long length) {
        if (header == null) return new Whole();
        String h = header.strip();
        int eq = h.indexOf('=');
        if (eq < 0 || !h.substring(0, eq).strip().equalsIgnoreCase("bytes")) return new Whole();
        String[] specs = h.substring(eq + 1).split(",", -1);
        if (specs.length > MOST) return new Whole();
        List<Range> out = new ArrayList<>();
        for (String raw : specs) {
            String spec = raw.strip();
            int dash = spec.indexOf('-');
            if (dash < 0) return new Whole();
            String first = spec.substring(0, dash).strip(), last = spec.substring(dash + 1).strip();
            try {
                if (first.isEmpty()) {
                    // suffix: the last N bytes
                    if (last.isEmpty() || !digits(last)) return new Whole();
                    long n = Long.parseLong(last);
                    if (n > 0 && length > 0) out.add(new Range(Math.max(0, length - n), length));
                    continue;
                }
                if (!digits(first) || (!last.isEmpty() && !digits(last))) return new Whole();
                long a = Long.parseLong(first);
                long b = last.isEmpty() ? Long.MAX_VALUE : Long.parseLong(last);
                if (b < a) return new Whole();   // invalid: the whole header is ignored
                if (a < length) out.add(new Range(a, Math.min(b, length - 1) + 1));
            } catch (NumberFormatException e) {
                return new Whole();   // more digits than a long holds
            }
        }
        return out.isEmpty() ? new Unsatisfiable() : new Parts(List.copyOf(out));
    }

    private static boolean digits(String s) {
        for (int i = 0; i < s.length(); i++) if (s.charAt(i) < '0' || s.charAt(i) > '9') return false;
        return !s.isEmpty();
    }
}
