package io.directmap.serve;

import io.directmap.sys.FileVersion;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Locale;

/**
 * A file version's validators, {@code ETag} and {@code Last-Modified}, and the conditional request
 * headers evaluated against them in the order of RFC 9110 section 13.2.2.
 *
 * <p>The ETag names the version exactly: st_dev, st_ino, size, mtime and ctime in nanoseconds. A
 * rewrite with the same size and mtime (touch -d) still moves the ctime, so it gets a new ETag.
 */
final class Preconditions {
    /** What the conditional headers decide. */
    enum Outcome {
        /** Go on with the request (its Range, if any, still applies). */
        PROCEED,
        /** Go on, but send the whole file: If-Range did not match. */
        IGNORE_RANGE,
        /** 304 Not Modified. */
        NOT_MODIFIED,
        /** 412 Precondition Failed. */
        FAILED
    }

    private static final DateTimeFormatter HTTP_DATE = DateTimeFormatter.RFC_1123_DATE_TIME.withZone(ZoneOffset.UTC);

    private Preconditions() {}

    static String etag(FileVersion.Version v) {
        return "\"" + Integer.toHexString(v.devMajor()) + ":" + Integer.toHexString(v.devMinor()) + "-" + Long.toHexString(v.inode())
                + "-" + Long.toHexString(v.size()) + "-" + Long.toHexString(v.mtimeNanos()) + "-" + Long.toHexString(v.ctimeNanos()) + "\"";
    }

    static long lastModifiedSeconds(FileVersion.Version v) {
        return Math.floorDiv(v.mtimeNanos(), 1_000_000_000L);
    }

    static String httpDate(long epochSeconds) {
        return HTTP_DATE.format(Instant.ofEpochSecond(epochSeconds));
    }

    /**
     * The outcome for these request headers (null when absent); hasRange says whether a Range
     * header came (If-Range matters only then).
     */
    static Outcome evaluate(FileVersion.Version v, String ifMatch, String ifUnmodifiedSince, String ifNoneMatch,
                            String ifModifiedSince, String ifRange, boolean hasRange) {
        String etag = etag(v);
        long modified = lastModifiedSeconds(v);
        if (ifMatch != null) {
            if (!matches(ifMatch, etag, false)) return Outcome.FAILED;
        } else if (ifUnmodifiedSince != null) {
            Long since = parseDate(ifUnmodifiedSince);
            if (since != null && modified > since) return Outcome.FAILED;
        }
        if (ifNoneMatch != null) {
            if (matches(ifNoneMatch, etag, true)) return Outcome.NOT_MODIFIED;
        } else if (ifModifiedSince != null) {
            Long since = parseDate(ifModifiedSince);
            if (since != null && modified <= since) return Outcome.NOT_MODIFIED;
        }
        if (hasRange && ifRange != null) {
            String r = ifRange.strip();
            if (r.startsWith("\"") || r.startsWith("W/")) {
                if (!r.equals(etag)) return Outcome.IGNORE_RANGE;   // a strong comparison: a weak tag never matches
            } else {
                Long date = parseDate(r);
                if (date == null || date != modified) return Outcome.IGNORE_RANGE;
            }
        }
        return Outcome.PROCEED;
    }

    /** Whether a list of entity tags (or "*") holds etag; weak comparison ignores W/ prefixes. */
    static boolean matches(String list, String etag, boolean weak) {
        String l = list.strip();
        if (l.equals("*")) return true;
        for (String raw : l.split(",")) {
            String t = raw.strip();
            if (t.startsWith("W/")) {
                if (!weak) continue;
                t = t.substring(2);
            }
            if (t.equals(etag)) return true;
        }
        return false;
    }

    private static Long parseDate(String s) {
        try {
            return ZonedDateTime.parse(s.strip(), DateTimeFormatter.RFC_1123_DATE_TIME.withLocale(Locale.ROOT)).toEpochSecond();
        } catch (DateTimeParseException e) {
            return null;   // an invalid date makes the header be ignored (RFC 9110)
        }
    }
}
