package io.directmap.cli;

import io.directmap.fs.FsLayer;
import io.directmap.fs.PinInfo;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The pins of this host as {@code dmap pins} sees them: a process that holds pins ({@code dmap pin})
 * publishes them as {@code /run/directmap/pins/PID-N.json}, with the trust and staleness rules of
 * {@link StatsFiles} (the same publisher and listing: a directory of its own, files of dead
 * processes or reused pids removed and named). A pin dies with its process (the kernel drops its
 * fanotify group), so a stale record names a pin that holds nothing any more.
 */
final class PinFiles {
    private PinFiles() {}

    static Path dir() {
        return StatsFiles.dir().resolve("pins");
    }

    /** The record as it is written: who holds the pins, and each pin. */
    static Map<String, Object> snapshot(List<PinInfo> pins, long pid, long startTime, String command) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("pid", pid);
        m.put("start_time", startTime);
        m.put("command", command);
        m.put("updated_ms", System.currentTimeMillis());
        List<Object> list = new ArrayList<>();
        for (PinInfo p : pins) list.add(json(p));
        m.put("pins", list);
        return m;
    }

    static Map<String, Object> json(PinInfo p) {
        Map<String, Object> j = new LinkedHashMap<>();
        j.put("file", p.file().toString());
        j.put("dev", p.dev());
        j.put("inode", p.inode());
        j.put("start", p.start());
        j.put("end", p.end());
        j.put("device", p.importer());
        j.put("created_ms", p.createdMillis());
        j.put("references", p.references());
        j.put("attachments", p.attachments());
        j.put("pinned", p.pinned());
        j.put("refused", p.refused());
        j.put("last_refused", p.lastRefused());
        return j;
    }

    /** Publishes fs's pins for command until closed (the file goes at close and at exit). */
    static StatsFiles.Publisher start(FsLayer fs, String command, PrintWriter err) {
        return StatsFiles.Publisher.start((pid, startTime, cmd) -> snapshot(fs.pins(), pid, startTime, cmd), dir(), command,
                "pins", "dmap pins", err);
    }

    /** One pin of the listing, with the process that holds it. */
    record Held(long pid, String command, Map<String, Object> pin) {}

    record Listing(Path dir, List<Held> pins, List<StatsFiles.Ignored> ignored) {}

    /** Every pin published on this host; stale records are removed and listed as ignored. */
    static Listing list() throws IOException {
        StatsFiles.Listing l = StatsFiles.list(dir(), null);
        List<Held> pins = new ArrayList<>();
        for (StatsFiles.Found f : l.found()) {
            Object command = f.snapshot().get("command");
            if (!(f.snapshot().get("pins") instanceof List<?> ps)) continue;
            for (Object o : ps) {
                if (!(o instanceof Map<?, ?> p)) continue;
                Map<String, Object> pin = new LinkedHashMap<>();
                p.forEach((k, v) -> pin.put(String.valueOf(k), v));
                pins.add(new Held(f.pid(), String.valueOf(command), pin));
            }
        }
        return new Listing(l.dir(), pins, l.ignored());
    }
}
