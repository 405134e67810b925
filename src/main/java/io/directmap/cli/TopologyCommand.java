package io.directmap.cli;

import io.directmap.pci.PciTree;
import io.directmap.pci.Reach;
import io.directmap.pci.Topology;
import io.directmap.sys.Units;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "topology", description = {
        "Draw the PCI tree (this machine's, read from sysfs, with what the topology file places in it) and say,",
        "for each pair of devices, whether one reaches the other's memory directly, how far, and why not."})
final class TopologyCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;
    @Mixin Common.TopologyOption topology;

    @Option(names = "--json", description = "Print JSON for programs instead of tables.")
    boolean json;

    @Option(names = "--devices", split = ",", paramLabel = "NAME",
            description = "Software devices to pair with the others (gpu0,nic0); those the file places are paired anyway.")
    List<String> devices = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        Topology t = topology.load();
        PrintWriter out = spec.commandLine().getOut();
        try {
            return print(t, out);
        } finally {
            out.flush();    // print() does not flush an autoflushing writer; main exits right after
        }
    }

    private int print(Topology t, PrintWriter out) {
        PciTree machine = t.machine();
        List<Topology.Endpoint> endpoints = endpoints(t, machine);
        List<Map<String, Object>> pairs = pairs(t, endpoints);
        if (json) {
            Map<String, Object> j = new LinkedHashMap<>();
            j.put("source", t.source());
            j.put("cpu_routes_p2p", machine.cpuRoutesP2p().orElse(null));
            j.put("problems", machine.problems());
            j.put("nodes", t.tree().stream().map(n -> nodeJson(t, machine, n)).toList());
            j.put("block_devices", machine.blockDevices().values().stream().map(b -> {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("name", b.name());
                m.put("pci", b.function().orElse(null));
                m.put("bytes", b.sizeBytes());
                m.put("why", b.why());
                return (Object) m;
            }).toList());
            j.put("pairs", pairs);
            out.print(Json.write(j));
            return Dmap.OK;
        }
        out.println("PCI tree (" + t.source() + "; the machine's from sysfs):");
        for (String p : machine.problems()) out.println("  note: " + p);
        Table tree = new Table("NODE", "KIND", "ID", "CLASS", "BARS", "DISKS", "FLAGS");
        List<PciTree.Node> all = t.tree();
        for (PciTree.Node root : all) {
            boolean orphan = root.parent() == null || all.stream().noneMatch(n -> n.name().equals(root.parent()));
            if (orphan) draw(t, machine, all, root, 0, tree);
        }
        tree.print(out);
        List<String> virtual = machine.blockDevices().values().stream()
                .filter(b -> b.function().isEmpty() && b.sizeBytes() > 0 && !t.placedDevices().contains(b.name()))
                .map(PciTree.BlockFunction::name).toList();
        if (!virtual.isEmpty()) {
            out.println("Not on PCI (no PCI function; place them with 'place NAME under BRIDGE'): " + String.join(", ", virtual));
        }
        out.println();
        if (pairs.isEmpty()) {
            out.println("No pairs: name software devices with --devices gpu0,nic0, or place them in a --topology file.");
            return Dmap.OK;
        }
        Table p = new Table("FROM", "TO", "P2P", "DISTANCE", "ATOMICS", "WHY");
        for (Map<String, Object> m : pairs) {
            int d = (Integer) m.get("distance");
            String why = (String) m.get("why");
            if (Boolean.TRUE.equals(m.get("p2p")) && Boolean.FALSE.equals(m.get("atomics"))) why += "; atomics: " + m.get("atomics_why");
            p.row(m.get("from"), m.get("to"), m.get("path"), d < 0 ? "-" : d, Boolean.TRUE.equals(m.get("atomics")) ? "yes" : "no", why);
        }
        p.print(out);
        return Dmap.OK;
    }

    private static void draw(Topology t, PciTree machine, List<PciTree.Node> all, PciTree.Node n, int depth, Table table) {
        if (depth > 64) return;
        table.row("  ".repeat(depth) + n.name(), n.kind().label(), n.id().isEmpty() ? "-" : n.id(),
                n.declared() ? (n.kind() == PciTree.Kind.DEVICE ? "placed by the file" : "declared by the file") : n.description(),
                n.bars().isEmpty() ? "-" : String.join(", ", n.bars().stream().map(b -> "BAR" + b.index() + " " + Units.bytes(b.bytes()) + " " + b.flags()).toList()),
                disks(machine, n).isEmpty() ? "-" : String.join(",", disks(machine, n)),
                String.join(", ", t.flags(n)));
        for (PciTree.Node c : all) {
            if (n.name().equals(c.parent())) draw(t, machine, all, c, depth + 1, table);
        }
    }

    private static List<String> disks(PciTree machine, PciTree.Node n) {
        return machine.blockDevices().values().stream()
                .filter(b -> b.function().equals(Optional.of(n.name()))).map(PciTree.BlockFunction::name).toList();
    }

    private static Map<String, Object> nodeJson(Topology t, PciTree machine, PciTree.Node n) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", n.name());
        m.put("kind", n.kind().label());
        m.put("parent", n.parent());
        m.put("declared", n.declared());
        m.put("id", n.id().isEmpty() ? null : n.id());
        m.put("class", n.description());
        m.put("bars", n.bars().stream().map(b -> {
            Map<String, Object> bar = new LinkedHashMap<>();
            bar.put("bar", b.index());
            bar.put("bytes", b.bytes());
            bar.put("kind", b.flags());
            return (Object) bar;
        }).toList());
        m.put("block_devices", disks(machine, n));
        m.put("flags", t.flags(n));
        m.put("notes", n.notes());
        return m;
    }

    /** --devices, then what the file places, then the machine's disks that hold something. */
    private List<Topology.Endpoint> endpoints(Topology t, PciTree machine) {
        Map<String, Topology.Endpoint> out = new LinkedHashMap<>();
        List<String> names = new ArrayList<>();
        for (String d : devices) if (!d.isBlank()) names.add(d.trim());
        names.addAll(t.placedDevices());
        for (PciTree.BlockFunction b : machine.blockDevices().values()) if (b.sizeBytes() > 0) names.add(b.name());
        for (String name : names) {
            if (out.containsKey(name)) continue;
            PciTree.BlockFunction b = machine.blockDevices().get(name);
            out.put(name, b != null
                    ? t.endpoint(name, Topology.Kind.BLOCK_DEVICE, b.function(), Topology.DEFAULT_BLOCK_APERTURE)
                    : t.endpoint(name, Topology.Kind.IMPORTER, Optional.empty(), 0));
        }
        return new ArrayList<>(out.values());
    }

    /** Each pair once; a software device asks and a block device answers, as when it maps a file's blocks. */
    private static List<Map<String, Object>> pairs(Topology t, List<Topology.Endpoint> endpoints) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < endpoints.size(); i++) {
            for (int j = i + 1; j < endpoints.size(); j++) {
                Topology.Endpoint from = endpoints.get(i), to = endpoints.get(j);
                if (from.kind() == Topology.Kind.BLOCK_DEVICE && to.kind() != Topology.Kind.BLOCK_DEVICE) {
                    Topology.Endpoint x = from;
                    from = to;
                    to = x;
                }
                Reach p = t.peerPath(from, to);
                Reach a = t.atomicPath(from, to);
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("from", from.name());
                m.put("to", to.name());
                m.put("p2p", p.allowed());
                m.put("path", p.kind());
                m.put("distance", p.distance());
                m.put("route", p.route());
                m.put("why", p.why());
                m.put("atomics", a.allowed());
                m.put("atomics_why", a.why());
                out.add(m);
            }
        }
        return out;
    }
}
