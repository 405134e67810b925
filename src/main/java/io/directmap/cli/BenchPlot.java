package io.directmap.cli;

import io.directmap.tools.bench.Bench;
import java.util.List;
import java.util.Locale;

/**
 * The bench table as a grouped bar chart: one group per cache state, one bar per method at its
 * median, a line from min to max (an HTML page, inline SVG).
 */
final class BenchPlot {
    private static final String[] COLORS = {"#333333", "#555555", "#8c8c8c", "#b5b5b5", "#1f77b4", "#ff7f0e", "#2ca02c"};

    private BenchPlot() {}

    static String html(String title, Bench.Report report) {
        List<Bench.Row> results = report.rows();
        double max = results.stream().filter(Bench.Row::ran).mapToDouble(Bench.Row::max).max().orElse(1);
        int barW = 34, gap = 8, groupGap = 40, top = 40, height = 300, left = 60;
        List<String> caches = results.stream().map(Bench.Row::cache).distinct().toList();
        List<String> methods = results.stream().map(Bench.Row::method).distinct().toList();
        int groupW = methods.size() * (barW + gap);
        int width = left + caches.size() * (groupW + groupGap) + 200;
        StringBuilder svg = new StringBuilder();
        svg.append(String.format(Locale.ROOT, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' font-size='12'>%n",
                width, top + height + 60));
        for (int t = 0; t <= 4; t++) {
            double v = max * t / 4;
            int y = top + height - (int) (height * t / 4.0);
            svg.append(String.format(Locale.ROOT, "<line x1='%d' x2='%d' y1='%d' y2='%d' stroke='#ddd'/><text x='%d' y='%d' text-anchor='end'>%.1f</text>%n",
                    left, width - 200, y, y, left - 6, y + 4, v));
        }
        svg.append(String.format(Locale.ROOT, "<text x='12' y='%d' transform='rotate(-90 12 %d)'>GiB/s</text>%n", top + height / 2, top + height / 2));
        for (int g = 0; g < caches.size(); g++) {
            int x0 = left + 10 + g * (groupW + groupGap);
            for (int m = 0; m < methods.size(); m++) {
                String cache = caches.get(g), method = methods.get(m);
                Bench.Row r = results.stream().filter(x -> x.cache().equals(cache) && x.method().equals(method)).findFirst().orElse(null);
                if (r == null || !r.ran()) continue;
                int h = (int) (height * r.median() / max);
                int x = x0 + m * (barW + gap);
                int yMin = top + height - (int) (height * r.min() / max), yMax = top + height - (int) (height * r.max() / max);
                svg.append(String.format(Locale.ROOT, "<rect x='%d' y='%d' width='%d' height='%d' fill='%s'><title>%s %s: %.2f GiB/s (%.2f to %.2f), %.3f CPU s/GiB</title></rect>%n",
                        x, top + height - h, barW, h, COLORS[m % COLORS.length], method, cache, r.median(), r.min(), r.max(), r.medianRun().cpuSPerGib()));
                svg.append(String.format(Locale.ROOT, "<line x1='%d' x2='%d' y1='%d' y2='%d' stroke='#000'/>%n", x + barW / 2, x + barW / 2, yMin, yMax));
                svg.append(String.format(Locale.ROOT, "<text x='%d' y='%d' text-anchor='middle' font-size='10'>%.2f</text>%n",
                        x + barW / 2, Math.min(top + height - h, yMax) - 4, r.median()));
            }
            svg.append(String.format(Locale.ROOT, "<text x='%d' y='%d' text-anchor='middle' font-weight='bold'>%s file</text>%n",
                    x0 + groupW / 2, top + height + 20, caches.get(g)));
        }
        for (int m = 0; m < methods.size(); m++) {
            int y = top + 10 + m * 20, x = width - 180;
            svg.append(String.format(Locale.ROOT, "<rect x='%d' y='%d' width='14' height='14' fill='%s'/><text x='%d' y='%d'>%s</text>%n",
                    x, y, COLORS[m % COLORS.length], x + 20, y + 12, methods.get(m)));
        }
        svg.append("</svg>\n");
        return "<!doctype html>\n<html><head><meta charset='utf-8'><title>dmap bench</title></head><body>\n<h2>dmap bench: "
                + escape(title) + "</h2>\n" + svg + "<pre>" + escape(Json.write(Bench.toJson(report))) + "</pre>\n</body></html>\n";
    }

    private static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
