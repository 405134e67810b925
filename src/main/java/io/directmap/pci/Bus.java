package io.directmap.pci;

import java.io.IOException;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The tree a topology answers from: the machine's (read from sysfs once, when first needed) plus
 * what the topology file declares (host bridges, switches and their ports, placed devices) and the
 * facts it states about any node (ACS redirection, atomics routing, completer widths, host bridges
 * that route peer traffic). Each stated fact keeps the rule and the file:line it came from, so an
 * answer can say who decided.
 */
final class Bus {
    /** AtomicOp completer widths (DEVCAP2 ATOMIC_COMP32, _COMP64, _COMP128). */
    enum Width { ATOMICS32, ATOMICS64, CAS128 }

    /** A fact a rule stated: what, and "file:line: the rule". */
    record Stated<T>(T value, String rule) {}

    /** What the file says of one node. */
    static final class Facts {
        Stated<Boolean> acsRedirect, noAtomicRouting, routesP2p, routesAtomics;
        Stated<Set<Width>> completer;
    }

    private final Supplier<PciTree> machine;
    private final Map<String, PciTree.Node> declared = new LinkedHashMap<>();
    private final Map<String, Facts> facts = new LinkedHashMap<>();
    private final Map<String, Integer> ports = new LinkedHashMap<>();

    Bus(Supplier<PciTree> machine) {
        this.machine = machine;
    }

    PciTree machine() { return machine.get(); }

    boolean declaresAnything() { return !declared.isEmpty() || !facts.isEmpty(); }

    /** A declared node by name, else the machine's; machine names (0000:00:02.0, pci0000:00) are read from sysfs. */
    Optional<PciTree.Node> node(String name) {
        PciTree.Node d = declared.get(name);
        if (d != null) return Optional.of(d);
        if (!isMachineName(name)) return Optional.empty();
        return Optional.ofNullable(machine().nodes().get(name));
    }

    static boolean isMachineName(String name) {
        return name.matches(PciTree.FUNCTION) || name.matches(PciTree.HOST);
    }

    Optional<PciTree.Node> declaredNode(String name) { return Optional.ofNullable(declared.get(name)); }

    /** The node above n in the tree, empty above a host bridge. */
    Optional<PciTree.Node> parent(PciTree.Node n) {
        return n.parent() == null ? Optional.empty() : node(n.parent());
    }

    /** pci_upstream_bridge(): the bridge above n, empty where n sits on a root bus (the host bridge is no PCI bridge). */
    Optional<PciTree.Node> upstream(PciTree.Node n) {
        return parent(n).filter(p -> p.kind() != PciTree.Kind.HOST_BRIDGE);
    }

    PciTree.Node hostBridge(PciTree.Node n) {
        PciTree.Node at = n;
        for (int i = 0; i < 256 && at.kind() != PciTree.Kind.HOST_BRIDGE; i++) {
            Optional<PciTree.Node> p = parent(at);
            if (p.isEmpty()) break;
            at = p.get();
        }
        return at;
    }

    /** Every node: the machine's first, then the declared ones, in order. */
    List<PciTree.Node> nodes(boolean withMachine) {
        List<PciTree.Node> all = new ArrayList<>();
        if (withMachine) all.addAll(machine().nodes().values());
        all.addAll(declared.values());
        return all;
    }

    List<PciTree.Node> children(PciTree.Node n, boolean withMachine) {
        return nodes(withMachine).stream().filter(c -> n.name().equals(c.parent())).toList();
    }

    Facts facts(String name) { return facts.computeIfAbsent(name, k -> new Facts()); }

    Optional<Facts> factsOf(String name) { return Optional.ofNullable(facts.get(name)); }

    void declare(PciTree.Node n) { declared.put(n.name(), n); }

    /** A new downstream port of a declared switch: "sw0/0", "sw0/1", ... one per device or switch placed under it. */
    PciTree.Node newPort(PciTree.Node sw) {
        int i = ports.merge(sw.name(), 1, Integer::sum) - 1;
        PciTree.Node port = PciTree.Node.declared(sw.name() + "/" + i, PciTree.Kind.SWITCH_DOWNSTREAM, sw.name(),
                "downstream port of " + sw.name());
        declare(port);
        return port;
    }

    /**
     * A fact about n, or about the declared switch n is a port of: a rule on a switch speaks for
     * its ports, as firmware sets ACS on every downstream port of a switch.
     */
    <T> Optional<Stated<T>> stated(PciTree.Node n, Function<Facts, Stated<T>> which) {
        Optional<Stated<T>> own = factsOf(n.name()).map(which);
        if (own.isPresent()) return own;
        if (n.declared() && n.kind() == PciTree.Kind.SWITCH_DOWNSTREAM && n.parent() != null) {
            return factsOf(n.parent()).map(which);
        }
        return Optional.empty();
    }

    static Set<Width> widths(List<String> words, String where, String line) throws IOException {
        Set<Width> w = EnumSet.noneOf(Width.class);
        for (String s : words) {
            switch (s) {
                case "none" -> { }
                case "atomics32" -> w.add(Width.ATOMICS32);
                case "atomics64" -> w.add(Width.ATOMICS64);
                case "cas128" -> w.add(Width.CAS128);
                default -> throw new IOException(where + "'" + s + "' in '" + line
                        + "' is no completer width; write 'completer DEVICE none' or any of atomics32 atomics64 cas128");
            }
        }
        return w;
    }
}
