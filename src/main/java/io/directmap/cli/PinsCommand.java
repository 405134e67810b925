package io.directmap.cli;

import static io.directmap.cli.StatsFiles.n;

import io.directmap.sys.Units;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "pins", description = {
        "List every pin on this host: the file, the range held, the process that holds it (pid and command), the device,",
        "its age, its references and attachments, and how many writers it refused. Processes that hold pins (dmap pin)",
        "publish them under /run/directmap/pins; records of processes that are gone, or whose pid is another program's",
        "now, are removed and named (their pins died with them)."})
final class PinsCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--json", description = "Print JSON for programs instead of a table.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PinFiles.Listing l = PinFiles.list();
        long now = System.currentTimeMillis();
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("dir", l.dir().toString());
            List<Object> pins = new ArrayList<>();
            for (PinFiles.Held h : l.pins()) {
                Map<String, Object> p = new LinkedHashMap<>();
                p.put("pid", h.pid());
                p.put("command", h.command());
                p.putAll(h.pin());
                p.put("age_ms", now - n(h.pin().get("created_ms")));
                pins.add(p);
            }
            m.put("pins", pins);
            m.put("ignored", StatsFiles.ignoredJson(l.ignored()));
            out.print(Json.write(m));
        } else {
            StatsFiles.printIgnored(out, l.ignored());
            if (l.pins().isEmpty()) {
                out.printf("no pins on this host (none published in %s; dmap pin publishes its pins while it holds them)%n", l.dir());
            } else {
                out.printf("%-7s  %-20s  %-8s  %-22s  %8s  %4s  %7s  %s%n", "pid", "command", "device", "range", "age", "refs", "refused", "file");
                for (PinFiles.Held h : l.pins()) {
                    Map<String, Object> p = h.pin();
                    String command = h.command().length() > 20 ? h.command().substring(0, 19) + "~" : h.command();
                    out.printf("%-7d  %-20s  %-8s  %-22s  %7.1fs  %4d  %7d  %s%n", h.pid(), command, p.get("device"),
                            Units.range(n(p.get("start")), n(p.get("end"))), (now - n(p.get("created_ms"))) / 1000.0,
                            n(p.get("references")), n(p.get("refused")), p.get("file"));
                }
            }
        }
        out.flush();
        return Dmap.OK;
    }
}
