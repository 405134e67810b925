package io.directmap.pci;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The rules of Linux's drivers/pci/p2pdma.c, applied to a {@link Bus}:
 * <ul>
 *   <li>calc_map_type_and_dist(): walk up from both devices to the first bridge they share; the
 *       distance is the number of steps on both sides (two devices under one switch: 4). Where ACS
 *       redirects peer requests or completions (P2P Request Redirect, Completion Redirect, Egress
 *       Control: pci_bridge_has_acs_redir()) on any device of either path up to the shared bridge
 *       (that bridge and the two devices included), the traffic goes up to the root complex
 *       instead; where they share no bridge it has to.</li>
 *   <li>host_bridge_whitelist(): going through the host bridge works only where the host bridge
 *       is known to route peer traffic: its function is on the kernel's whitelist, the CPU does
 *       (AMD Zen, cpu_supports_p2pdma()), or the topology file says so.</li>
 *   <li>AtomicOps (PCIe 6.0 6.15; the kernel's pci_enable_atomic_ops_to_root()): every port on the
 *       path forwards them (Device Capabilities 2 AtomicOp Routing Supported, no AtomicOp Egress
 *       Blocking), conventional PCI carries none, and the device that completes them supports
 *       64-bit AtomicOps.</li>
 * </ul>
 */
final class P2pDma {
    private P2pDma() {}

    /** The kernel's pci_p2pdma_whitelist[] (host bridge function vendor:device; true: only within one host bridge). */
    private static final Map<String, Boolean> WHITELIST = Map.ofEntries(
            Map.entry("8086:3c00", true), Map.entry("8086:3c01", true),     // Xeon E5 / Core i7
            Map.entry("8086:2f00", true), Map.entry("8086:2f01", true),     // Xeon E5 v3
            Map.entry("8086:2030", false), Map.entry("8086:2031", false),   // Skylake-E root ports
            Map.entry("8086:2032", false), Map.entry("8086:2033", false),
            Map.entry("8086:2020", false), Map.entry("8086:09a2", false));  // Skylake-E, Ice Lake

    /** Both devices' paths up to where they meet: common is -1 where they share no bridge. */
    private record Walk(List<PciTree.Node> client, List<PciTree.Node> provider, int commonInClient, int commonInProvider) {
        boolean shared() { return commonInClient >= 0; }

        int distance() {
            return shared() ? commonInClient + commonInProvider : client.size() + provider.size();
        }

        /** The ports crossed between the two, each once (the shared bridge, or both host bridges). */
        List<PciTree.Node> between(Bus bus, boolean upToHost) {
            List<PciTree.Node> out = new ArrayList<>();
            if (!upToHost && shared()) {
                out.addAll(client.subList(1, commonInClient + 1));
                List<PciTree.Node> down = new ArrayList<>(provider.subList(1, Math.max(1, commonInProvider)));
                Collections.reverse(down);
                out.addAll(down);
                return out;
            }
            out.addAll(client.subList(1, client.size()));
            PciTree.Node hc = bus.hostBridge(client.getFirst()), hp = bus.hostBridge(provider.getFirst());
            out.add(hc);
            if (!hp.name().equals(hc.name())) out.add(hp);
            List<PciTree.Node> down = new ArrayList<>(provider.subList(1, provider.size()));
            Collections.reverse(down);
            out.addAll(down);
            return out;
        }

        String route(Bus bus, boolean upToHost) {
            List<String> names = new ArrayList<>();
            names.add(client.getFirst().name());
            for (PciTree.Node n : between(bus, upToHost)) names.add(n.name());
            names.add(provider.getFirst().name());
            return String.join(" > ", names);
        }
    }

    private static Walk walk(Bus bus, PciTree.Node client, PciTree.Node provider) {
        List<PciTree.Node> c = chain(bus, client), p = chain(bus, provider);
        for (int i = 0; i < p.size(); i++) {
            for (int j = 0; j < c.size(); j++) {
                if (p.get(i).name().equals(c.get(j).name())) return new Walk(c, p, j, i);
            }
        }
        return new Walk(c, p, -1, -1);
    }

    /** n and the bridges above it, up to (not including) its host bridge. */
    private static List<PciTree.Node> chain(Bus bus, PciTree.Node n) {
        List<PciTree.Node> out = new ArrayList<>();
        for (Optional<PciTree.Node> at = Optional.of(n); at.isPresent() && out.size() < 256; at = bus.upstream(at.get())) {
            out.add(at.get());
        }
        return out;
    }

    /** Whether client can reach provider's memory, and how far (pci_p2pdma_distance). */
    static Reach distance(Bus bus, PciTree.Node client, PciTree.Node provider) {
        Walk w = walk(bus, client, provider);
        String redirected = "";
        if (w.shared()) {
            PciTree.Node shared = w.client().get(w.commonInClient());
            // calc_map_type_and_dist() asks pci_bridge_has_acs_redir() of every device on both
            // paths, the two devices and the bridge they share included: a redirect anywhere below
            // the root complex sends the request up to it. What cannot be read there is refused.
            List<String> acs = new ArrayList<>();
            for (PciTree.Node node : onBothPaths(w)) {
                Acs a = acs(bus, node);
                if (a.state == AcsState.UNREADABLE) {
                    return new Reach.Refused(w.distance(), w.route(bus, false), a.why + "; whether ACS redirects peer traffic there is unknown");
                }
                if (a.state == AcsState.REDIRECT) acs.add(a.why);
            }
            if (acs.isEmpty() && w.distance() == 0) return new Reach.Direct(0, client.name(), "the same function");
            if (acs.isEmpty()) {
                String under = shared.kind() == PciTree.Kind.SWITCH_UPSTREAM ? "switch" : shared.kind().label();
                return new Reach.Direct(w.distance(), w.route(bus, false), "under one " + under + ", " + shared.name() + ", with no ACS redirection");
            }
            redirected = String.join("; ", acs) + ", so peer traffic goes up to the root complex: ";
        }
        PciTree.Node hc = bus.hostBridge(client), hp = bus.hostBridge(provider);
        boolean same = hc.name().equals(hp.name());
        Optional<String> no = routesP2p(bus, hc, same).or(() -> same ? Optional.empty() : routesP2p(bus, hp, false));
        String through = same ? "host bridge " + hc.name() : "host bridges " + hc.name() + " and " + hp.name();
        if (no.isPresent()) {
            String lead = redirected.isEmpty() ? client.name() + " and " + provider.name() + " share no bridge below the root complex: " : redirected;
            return new Reach.Refused(w.distance(), w.route(bus, true), lead + no.get());
        }
        return new Reach.ThroughHostBridge(w.distance(), w.route(bus, true), hc.name(),
                redirected + "through " + through + ", which " + (same ? "routes" : "route") + " peer traffic (" + routesP2pBecause(bus, hc) + ")");
    }

    /** Whether client's AtomicOps reach provider's memory: the peer path, every port on it, and the completer. */
    static Reach atomics(Bus bus, PciTree.Node client, PciTree.Node provider, Topology.Kind providerKind, Reach p2p) {
        if (!p2p.allowed()) return new Reach.Refused(p2p.distance(), p2p.route(), "no peer-to-peer path: " + p2p.why());
        boolean up = p2p instanceof Reach.ThroughHostBridge;
        Walk w = walk(bus, client, provider);
        for (PciTree.Node n : w.between(bus, up)) {
            Optional<String> no = n.kind() == PciTree.Kind.HOST_BRIDGE ? hostRoutesAtomics(bus, n, w) : portRoutesAtomics(bus, n);
            if (no.isPresent()) return new Reach.Refused(p2p.distance(), p2p.route(), no.get());
        }
        Optional<String> completer = completes64(bus, provider, providerKind);
        if (completer.isPresent()) return new Reach.Refused(p2p.distance(), p2p.route(), completer.get());
        String why = "every port on the path routes AtomicOps and " + provider.name() + " completes 64-bit AtomicOps";
        return up ? new Reach.ThroughHostBridge(p2p.distance(), p2p.route(), ((Reach.ThroughHostBridge) p2p).hostBridge(), why)
                : new Reach.Direct(p2p.distance(), p2p.route(), why);
    }

    /**
     * The devices whose ACS decides, in the kernel's order: the provider's path from the provider up
     * to and including the bridge both paths share, then the client's from the client up to it.
     */
    private static List<PciTree.Node> onBothPaths(Walk w) {
        List<PciTree.Node> out = new ArrayList<>(w.provider().subList(0, w.commonInProvider() + 1));
        out.addAll(w.client().subList(0, w.commonInClient()));
        return out;
    }

    enum AcsState { DIRECT, REDIRECT, UNREADABLE }

    record Acs(AcsState state, String why) {}

    /** What ACS does at port: the file's 'acs' rule, else the ACS Control register of a real port. */
    static Acs acs(Bus bus, PciTree.Node port) {
        // 'acs SWITCH ...' speaks for the switch's downstream ports, where ACS P2P Request Redirect
        // acts (PCIe 6.0 6.12.1.2); a declared switch's upstream port has no ACS of its own.
        if (port.declared() && port.kind() == PciTree.Kind.SWITCH_UPSTREAM) return new Acs(AcsState.DIRECT, "");
        Optional<Bus.Stated<Boolean>> stated = bus.stated(port, f -> f.acsRedirect);
        if (stated.isPresent()) {
            return stated.get().value()
                    ? new Acs(AcsState.REDIRECT, "ACS P2P Request Redirect and Completion Redirect are set on " + port.name() + " (" + stated.get().rule() + ")")
                    : new Acs(AcsState.DIRECT, "");
        }
        if (port.config().isEmpty()) return new Acs(AcsState.DIRECT, "");
        ConfigSpace cs = port.config().get();
        if (cs.acs().isPresent()) {
            List<String> on = cs.acs().get().redirects();
            return on.isEmpty() ? new Acs(AcsState.DIRECT, "")
                    : new Acs(AcsState.REDIRECT, "ACS " + String.join(" and ", on) + (on.size() > 1 ? " are" : " is") + " set on " + port.name()
                            + String.format(" (ACS Control 0x%04x; the kernel's pci=disable_acs_redir=%s clears it)", cs.acs().get().control(), port.name()));
        }
        if (port.kind().expressPort() && !cs.extendedReadable()) {
            return new Acs(AcsState.UNREADABLE, port.name() + "'s ACS capability is unread (config space is " + cs.length()
                    + " bytes; run as root to read all 4096)");
        }
        return new Acs(AcsState.DIRECT, "");
    }

    /** Empty where host routes peer traffic, else why not. */
    private static Optional<String> routesP2p(Bus bus, PciTree.Node host, boolean sameHostBridge) {
        Optional<Bus.Stated<Boolean>> stated = bus.stated(host, f -> f.routesP2p);
        if (stated.isPresent() && stated.get().value()) return Optional.empty();
        String hint = "; if it does, say so with 'host-bridge " + host.name() + " routes-p2p' in the topology file";
        if (host.declared()) return Optional.of("host bridge " + host.name() + " is not known to route peer traffic" + hint);
        if (bus.machine().cpuRoutesP2p().isPresent()) return Optional.empty();
        Optional<PciTree.Node> fn = bus.machine().hostBridgeFunction(host.name());
        if (fn.isEmpty()) {
            return Optional.of("host bridge " + host.name() + " shows no function at 00.0 or root port to look up in the kernel's P2PDMA whitelist" + hint);
        }
        Boolean sameOnly = WHITELIST.get(fn.get().id());
        if (sameOnly == null) {
            return Optional.of("host bridge " + host.name() + " (" + fn.get().name() + ", " + fn.get().id() + ") is not in the kernel's P2PDMA whitelist" + hint);
        }
        if (sameOnly && !sameHostBridge) {
            return Optional.of("host bridge " + host.name() + " (" + fn.get().id() + ") routes peer traffic only within itself, and the path crosses to another");
        }
        return Optional.empty();
    }

    private static String routesP2pBecause(Bus bus, PciTree.Node host) {
        Optional<Bus.Stated<Boolean>> stated = bus.stated(host, f -> f.routesP2p);
        if (stated.isPresent() && stated.get().value()) return stated.get().rule();
        if (bus.machine().cpuRoutesP2p().isPresent()) return bus.machine().cpuRoutesP2p().get();
        return bus.machine().hostBridgeFunction(host.name()).map(f -> f.id() + " is in the kernel's P2PDMA whitelist").orElse("whitelisted");
    }

    private static Optional<String> portRoutesAtomics(Bus bus, PciTree.Node port) {
        Optional<Bus.Stated<Boolean>> stated = bus.stated(port, f -> f.noAtomicRouting);
        if (stated.isPresent() && stated.get().value()) {
            return Optional.of(port.name() + " does not route AtomicOps (" + stated.get().rule() + ")");
        }
        if (port.config().isEmpty()) return Optional.empty();  // declared: routes unless a rule says otherwise
        ConfigSpace cs = port.config().get();
        if (port.kind() == PciTree.Kind.PCI_BRIDGE || cs.pcie().isEmpty()) {
            return Optional.of(port.name() + " is a conventional PCI " + port.kind().label() + ", which carries no AtomicOps");
        }
        ConfigSpace.Pcie e = cs.pcie().get();
        if (!e.routesAtomics()) {
            return Optional.of(port.name() + " (" + e.portTypeName() + ") does not set AtomicOp Routing Supported (Device Capabilities 2 bit 6)");
        }
        if (e.egressBlocked()) {
            return Optional.of(port.name() + " (" + e.portTypeName() + ") has AtomicOp Egress Blocking set (Device Control 2 bit 7)");
        }
        return Optional.empty();
    }

    /**
     * Between root ports the root complex routes AtomicOps where its root ports say so (their
     * routing bit, checked as ports); a function on the root bus itself has no port to say it.
     */
    private static Optional<String> hostRoutesAtomics(Bus bus, PciTree.Node host, Walk w) {
        Optional<Bus.Stated<Boolean>> stated = bus.stated(host, f -> f.routesAtomics);
        if (stated.isPresent() && stated.get().value()) return Optional.empty();
        String hint = "; if it does, say so with 'host-bridge " + host.name() + " routes-p2p routes-atomics'";
        if (host.declared()) return Optional.of("host bridge " + host.name() + " is not known to route AtomicOps" + hint);
        for (List<PciTree.Node> side : List.of(w.client(), w.provider())) {
            PciTree.Node top = side.getLast();
            if (top.kind() != PciTree.Kind.ROOT_PORT) {
                return Optional.of(top.name() + " sits on the root bus of " + host.name()
                        + " with no root port to say whether the root complex routes AtomicOps to it" + hint);
            }
        }
        return Optional.empty();
    }

    /** Empty where n completes 64-bit AtomicOps, else why not. */
    private static Optional<String> completes64(Bus bus, PciTree.Node n, Topology.Kind kind) {
        Optional<Bus.Stated<Set<Bus.Width>>> stated = bus.stated(n, f -> f.completer);
        if (stated.isPresent()) {
            return stated.get().value().contains(Bus.Width.ATOMICS64) ? Optional.empty()
                    : Optional.of(n.name() + " does not complete 64-bit AtomicOps (" + stated.get().rule() + ")");
        }
        if (n.config().isPresent()) {
            Optional<ConfigSpace.Pcie> e = n.config().get().pcie();
            if (e.isEmpty()) return Optional.of(n.name() + " (" + n.id() + ") has no PCI Express capability: it completes no AtomicOps");
            return e.get().completes64() ? Optional.empty()
                    : Optional.of(n.name() + " (" + n.id() + ") does not set 64-bit AtomicOp Completer Supported (Device Capabilities 2 bit 8)");
        }
        if (kind == Topology.Kind.BLOCK_DEVICE) {
            return Optional.of(n.name() + " is a block device, which completes no AtomicOps unless a 'completer " + n.name() + " atomics64' rule says so");
        }
        return Optional.empty();
    }

    /** What matters for peer traffic at n, in short phrases, for a person reading the tree. */
    static List<String> flags(Bus bus, PciTree.Node n, Topology.Kind kind) {
        List<String> out = new ArrayList<>();
        switch (n.kind()) {
            case HOST_BRIDGE -> {
                Optional<String> no = routesP2p(bus, n, true);
                out.add(no.isEmpty() ? "routes p2p (" + routesP2pBecause(bus, n) + ")" : "p2p not known to route");
                Optional<Bus.Stated<Boolean>> at = bus.stated(n, f -> f.routesAtomics);
                if (at.isPresent() && at.get().value()) out.add("routes atomics");
            }
            case ENDPOINT, DEVICE -> {
                Optional<Bus.Stated<Set<Bus.Width>>> stated = bus.stated(n, f -> f.completer);
                if (stated.isPresent()) {
                    out.add(stated.get().value().isEmpty() ? "completes no atomics"
                            : "completes " + String.join(" ", stated.get().value().stream().map(w -> w.name().toLowerCase(Locale.ROOT)).toList()));
                } else if (n.config().isPresent()) {
                    Optional<ConfigSpace.Pcie> e = n.config().get().pcie();
                    if (e.isEmpty()) {
                        out.add("conventional PCI (no atomics)");
                    } else {
                        List<String> w = new ArrayList<>();
                        if (e.get().completes32()) w.add("atomics32");
                        if (e.get().completes64()) w.add("atomics64");
                        if (e.get().completes128()) w.add("cas128");
                        out.add(w.isEmpty() ? "completes no atomics" : "completes " + String.join(" ", w));
                    }
                } else {
                    out.add(kind == Topology.Kind.BLOCK_DEVICE ? "completes no atomics" : "completes atomics32 atomics64");
                }
            }
            default -> {
                Acs a = acs(bus, n);
                out.add(switch (a.state()) {
                    case DIRECT -> "ACS no redirect";
                    case REDIRECT -> "ACS redirect";
                    case UNREADABLE -> "ACS unread";
                });
                if (n.config().map(c -> c.acs().map(ConfigSpace.Acs::upstreamForwarding).orElse(false)).orElse(false)) {
                    out.add("ACS upstream forwarding");
                }
                out.add(portRoutesAtomics(bus, n).isEmpty() ? "routes atomics" : "no atomics routing");
            }
        }
        return out;
    }
}
