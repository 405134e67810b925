package io.directmap.sys;

import java.util.Locale;

/** Byte counts and rates as people read them: "64 MiB", "1.50 GiB/s". */
public final class Units {
    private static final String[] UNITS = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};

    private Units() {}

    public static String bytes(long n) {
        if (n < 1024) return n + " B";
        int u = 0;
        double v = n;
        while (v >= 1024 && u < UNITS.length - 1) {
            v /= 1024;
            u++;
        }
        return (v == Math.rint(v) ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%.2f", v))
                + " " + UNITS[u];
    }

    public static String rate(long bytes, double seconds) {
        if (seconds <= 0) return "-";
        return String.format(Locale.ROOT, "%.2f GiB/s", bytes / seconds / (1L << 30));
    }

    /** "[4 MiB, 8 MiB)" */
    public static String range(long start, long end) {
        return "[" + bytes(start) + ", " + bytes(end) + ")";
    }
}
