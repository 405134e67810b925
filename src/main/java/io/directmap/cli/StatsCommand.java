package io.directmap.cli;

import static io.directmap.cli.StatsFiles.n;

import io.directmap.sys.Units;
import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "stats", description = {
        "What running DirectMap processes are doing, in the manner of GDS's gds_stats: for each block device its",
        "BAR aperture (size, used, free, largest free window, free windows: the fragmentation) and what it refused",
        "or took back; the same for each software device that exports memory, with its live and revoked peer mappings;",
        "live mappings, peer mappings, invalidations, and the bindings' faults, re-faults and bytes.",
        "Long-running commands (dmap watch) publish a snapshot every second under /run/directmap; stale ones of",
        "processes that are gone are removed."})
final class StatsCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--json", description = "Print JSON for programs instead of tables.")
    boolean json;

    @Option(names = "--pid", paramLabel = "PID", description = "Only this process (default: every one that publishes).")
    Long pid;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        StatsFiles.Listing l = StatsFiles.list(StatsFiles.dir(), pid);
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("dir", l.dir().toString());
            m.put("processes", l.found().stream().map(StatsFiles.Found::snapshot).toList());
            m.put("ignored", StatsFiles.ignoredJson(l.ignored()));
            out.print(Json.write(m));
        } else {
            StatsFiles.printIgnored(out, l.ignored());
            if (l.found().isEmpty()) {
                out.printf("no DirectMap process%s publishes stats in %s (dmap watch does while it runs)%n",
                        pid == null ? "" : " with pid " + pid, l.dir());
            }
            for (StatsFiles.Found f : l.found()) print(out, f);
        }
        out.flush();
        if (pid != null && l.found().isEmpty()) {
            err.println("dmap: no stats from process " + pid + " in " + l.dir() + ": it is not a DirectMap process that runs long"
                    + " (dmap watch), or it runs as another user, or it stopped");
            return Dmap.FAILED;
        }
        return Dmap.OK;
    }

    private static void print(PrintWriter out, StatsFiles.Found f) {
        Map<String, Object> s = f.snapshot();
        long age = System.currentTimeMillis() - n(s.get("updated_ms"));
        out.printf("pid %d (%s), updated %.1f s ago%n", f.pid(), s.get("command"), age / 1000.0);
        out.printf("  %-10s  %9s  %9s  %9s  %12s  %12s  %7s  %9s  %7s  %9s  %9s%n", "device", "aperture", "used", "free", "largest free",
                "free windows", "windows", "when full", "refused", "reclaimed", "peer maps");
        if (s.get("devices") instanceof List<?> ds) {
            for (Object o : ds) {
                if (!(o instanceof Map<?, ?> d)) continue;
                out.printf("  %-10s  %9s  %9s  %9s  %12s  %12d  %7d  %9s  %7d  %9d  %9d%n", d.get("name"), Units.bytes(n(d.get("aperture_bytes"))),
                        Units.bytes(n(d.get("used_bytes"))), Units.bytes(n(d.get("free_bytes"))),
                        Units.bytes(n(d.get("largest_free_bytes"))), n(d.get("free_windows")), n(d.get("windows")), d.get("when_full"),
                        n(d.get("refusals")), n(d.get("reclaims")), n(d.get("peer_mappings")));
            }
        }
        if (s.get("exporters") instanceof List<?> es && !es.isEmpty()) {
            out.printf("  %-10s  %9s  %9s  %9s  %12s  %12s  %7s  %9s  %7s  %9s  %9s  %7s  %8s%n", "exporter", "aperture", "used", "free",
                    "largest free", "free windows", "windows", "when full", "refused", "reclaimed", "peer maps", "revoked", "exported");
            for (Object o : es) {
                if (!(o instanceof Map<?, ?> e)) continue;
                out.printf("  %-10s  %9s  %9s  %9s  %12s  %12d  %7d  %9s  %7d  %9d  %9d  %7d  %8s%n", e.get("name"),
                        Units.bytes(n(e.get("aperture_bytes"))), Units.bytes(n(e.get("used_bytes"))), Units.bytes(n(e.get("free_bytes"))),
                        Units.bytes(n(e.get("largest_free_bytes"))), n(e.get("free_windows")), n(e.get("windows")), e.get("when_full"),
                        n(e.get("refusals")), n(e.get("reclaims")), n(e.get("live_mappings")), n(e.get("revoked_mappings")),
                        Units.bytes(n(e.get("exported_bytes"))));
            }
        }
        out.printf("  %d mappings, %d peer mappings, %d invalidations%n", n(s.get("mappings")), n(s.get("peer_mappings")),
                n(s.get("invalidations")));
        if (s.get("bindings") instanceof Map<?, ?> b) {
            out.printf("  bindings: %d faults, %d re-faults, %d let go on invalidation, %d reads (%d retried), %s direct, %s through the page cache%n",
                    n(b.get("faults")), n(b.get("refaults")), n(b.get("invalidations")), n(b.get("reads")), n(b.get("retries")),
                    Units.bytes(n(b.get("direct_bytes"))), Units.bytes(n(b.get("fallback_bytes"))));
        }
    }
}
