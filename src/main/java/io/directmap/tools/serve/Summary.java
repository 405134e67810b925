package io.directmap.tools.serve;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.DoubleUnaryOperator;

/**
 * scripts/bench-serve's results, summarised: the script appends one line per figure,
 * {@code server TAB repeat TAB metric TAB value}, and this prints three tables a person reads at a
 * glance (cold large files, scan resistance, coherence) with min, median and max over the repeats
 * (the page cache shown is what the server's cgroup holds at the end of a run; its growth is in the JSON)
 * and ratios against the first server (nginx with sendfile, measured in the same run), or the same
 * as JSON. The mixed-version counts are sums over the repeats: one mixed response is one too many.
 */
final class Summary {
    /** server -> metric -> one value per repeat, in the order the servers first appear. */
    private final Map<String, Map<String, List<Double>>> values = new LinkedHashMap<>();

    static Summary read(Path tsv) throws IOException {
        Summary s = new Summary();
        for (String line : Files.readAllLines(tsv)) {
            if (line.isBlank()) continue;
            String[] f = line.split("\t");
            if (f.length != 4) throw new IOException(tsv + ": not server, repeat, metric, value: " + line);
            s.values.computeIfAbsent(f[0], k -> new LinkedHashMap<>()).computeIfAbsent(f[2], k -> new ArrayList<>())
                    .add(Double.parseDouble(f[3]));
        }
        if (s.values.isEmpty()) throw new IOException(tsv + " holds no results");
        return s;
    }

    private List<Double> of(String server, String metric) {
        return values.getOrDefault(server, Map.of()).getOrDefault(metric, List.of());
    }

    static double median(List<Double> v) {
        if (v.isEmpty()) return Double.NaN;
        List<Double> s = new ArrayList<>(v);
        s.sort(null);
        int n = s.size();
        return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
    }

    private double median(String server, String metric) { return median(of(server, metric)); }

    private double sum(String server, String metric) {
        return of(server, metric).stream().mapToDouble(Double::doubleValue).sum();
    }

    /** "1.23 (1.10-1.30)": the median, and the range when there was more than one run. */
    private String spread(String server, String metric, DoubleUnaryOperator scale, String format) {
        List<Double> v = of(server, metric);
        if (v.isEmpty()) return "-";
        double lo = v.stream().mapToDouble(Double::doubleValue).min().orElseThrow();
        double hi = v.stream().mapToDouble(Double::doubleValue).max().orElseThrow();
        String med = format(format, scale.applyAsDouble(median(v)));
        return v.size() == 1 ? med : med + " (" + format(format, scale.applyAsDouble(lo)) + "-" + format(format, scale.applyAsDouble(hi)) + ")";
    }

    /** As String.format, without "-0" for a small negative (a cgroup's cache shrinking by a few pages). */
    private static String format(String format, double d) {
        String s = String.format(Locale.ROOT, format, d);
        return s.matches("-0(\\.0*)?%?") ? s.substring(1) : s;
    }

    private String ratio(String server, String metric) {
        String base = values.keySet().iterator().next();
        double b = median(base, metric), x = median(server, metric);
        return Double.isNaN(b) || Double.isNaN(x) || b == 0 ? "-" : String.format(Locale.ROOT, "%.2fx", x / b);
    }

    private static final DoubleUnaryOperator SAME = d -> d, MIB = d -> d / (1 << 20), PERCENT = d -> d * 100;

    String table() {
        StringBuilder out = new StringBuilder();
        String base = values.keySet().iterator().next();
        List<String[]> cold = new ArrayList<>();
        cold.add(new String[] {"server", "GiB/s", "vs " + base, "CPU s/GiB", "vs " + base, "cache held MiB", "read direct"});
        for (String s : values.keySet()) {
            cold.add(new String[] {s, spread(s, "cold_gibps", SAME, "%.2f"), ratio(s, "cold_gibps"),
                    spread(s, "cold_cpu_s_per_gib", SAME, "%.2f"), ratio(s, "cold_cpu_s_per_gib"),
                    spread(s, "cold_cache_held_bytes", MIB, "%.0f"), spread(s, "cold_direct_share", PERCENT, "%.0f%%")});
        }
        out.append("Cold large files (median (min-max) over ").append(of(base, "cold_gibps").size()).append(" runs):\n");
        out.append(render(cold)).append('\n');
        List<String[]> scan = new ArrayList<>();
        scan.add(new String[] {"server", "hot req/s alone", "p99 ms alone", "hot req/s in sweep", "p99 ms in sweep",
                "sweep GiB/s", "cache held MiB", "hot set cached in sweep"});
        for (String s : values.keySet()) {
            scan.add(new String[] {s, spread(s, "hot_alone_rps", SAME, "%.0f"), spread(s, "hot_alone_p99_ms", SAME, "%.2f"),
                    spread(s, "hot_sweep_rps", SAME, "%.0f"), spread(s, "hot_sweep_p99_ms", SAME, "%.2f"),
                    spread(s, "sweep_gibps", SAME, "%.2f"), spread(s, "sweep_cache_held_bytes", MIB, "%.0f"),
                    spread(s, "hot_cached_during_fraction", PERCENT, "%.0f%%")});
        }
        out.append("Scan resistance (hot set at a steady rate, alone and during a cold sweep):\n").append(render(scan)).append('\n');
        List<String[]> mixed = new ArrayList<>();
        mixed.add(new String[] {"server", "responses", "complete clean", "complete MIXED", "complete TORN", "cut off",
                "ETag conflicts", "versions written"});
        for (String s : values.keySet()) {
            mixed.add(new String[] {s, count(s, "responses"), count(s, "completeClean"), count(s, "completeMixed"),
                    count(s, "completeTorn"), count(s, "cutOffClean", "cutOffMixed", "cutOffTorn"), count(s, "etagConflicts"),
                    count(s, "versionsWritten")});
        }
        out.append("Concurrent rewrite (sums over all runs; complete MIXED (blocks of two versions) or TORN (a block of no"
                + " version) is silently wrong content):\n")
                .append(render(mixed));
        return out.toString();
    }

    private String count(String server, String... metrics) {
        double total = 0;
        boolean any = false;
        for (String m : metrics) {
            any |= !of(server, m).isEmpty();
            total += sum(server, m);
        }
        return any ? String.format(Locale.ROOT, "%.0f", total) : "-";
    }

    private static String render(List<String[]> rows) {
        int[] width = new int[rows.getFirst().length];
        for (String[] r : rows) for (int i = 0; i < r.length; i++) width[i] = Math.max(width[i], r[i].length());
        StringBuilder b = new StringBuilder();
        for (String[] r : rows) {
            for (int i = 0; i < r.length; i++) {
                b.append(i == 0 ? String.format("%-" + width[i] + "s", r[i]) : "  " + String.format("%" + width[i] + "s", r[i]));
            }
            b.append('\n');
        }
        return b.toString();
    }

    /** Every metric of every server: its runs, min, median, max and sum. */
    Map<String, Object> json(Map<String, String> run) {
        Map<String, Object> servers = new LinkedHashMap<>();
        values.forEach((server, metrics) -> {
            Map<String, Object> m = new LinkedHashMap<>();
            metrics.forEach((metric, v) -> {
                Map<String, Object> f = new LinkedHashMap<>();
                f.put("runs", v);
                f.put("min", v.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN));
                f.put("median", median(v));
                f.put("max", v.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN));
                f.put("sum", v.stream().mapToDouble(Double::doubleValue).sum());
                m.put(metric, f);
            });
            servers.put(server, m);
        });
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("run", run);
        out.put("baseline", values.keySet().iterator().next());
        out.put("servers", servers);
        return out;
    }
}
