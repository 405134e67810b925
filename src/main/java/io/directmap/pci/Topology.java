package io.directmap.pci;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * Where devices sit and what the bus between them allows: which pairs can do peer-to-peer, which
 * paths carry PCIe atomics, how much BAR aperture each device exposes. Real devices take their PCI
 * address from sysfs; software devices exist only here, until a topology file places them in the
 * machine's PCI tree.
 *
 * <p>The default topology makes every block device and every software device peers on one
 * switch, with no atomics on any path (a block device never executes atomics on its data) and a
 * 1 TiB aperture per block device, so the direct path works out of the box. A topology file says
 * otherwise, one rule a line:
 *
 * <pre>
 * bar     loop0 64M     # loop0 exposes 64 MiB of aperture for direct mappings
 * bar     loop1 1M reclaim # when full, loop1 takes back its least recently used windows (default: refuse)
 * no-p2p  gpu0  loop0   # no peer-to-peer path between them ("*" matches any endpoint)
 * atomics gpu0  nvme0n1 # the path between them carries PCIe atomics
 *
 * host-bridge hb1 routes-p2p          # a host bridge (or mark a real one: pci0000:00) that routes peer traffic;
 *                                     # add routes-atomics where it routes AtomicOps too
 * switch  sw0 under hb1               # a PCIe switch; each device placed under it gets a downstream port sw0/N
 * place   gpu0 under sw0              # a device (software, or a block device such as loop0) in the tree
 * acs     sw0 redirect                # ACS P2P Request/Completion Redirect on sw0's ports (or 'direct')
 * no-atomic-routing sw0               # sw0's ports do not forward AtomicOps
 * completer gpu0 atomics32 atomics64  # the AtomicOp widths gpu0 completes (atomics32 atomics64 cas128, or none)
 * </pre>
 *
 * Real nodes are named as sysfs names them: functions by address (0000:00:02.0), host bridges
 * pciDDDD:BB; a rule names a node declared on an earlier line or a real one. A block device on PCI
 * sits where sysfs says, unless a 'place' rule puts it elsewhere. Where both devices of a pair are
 * in the tree, the tree answers by the rules of Linux's pci_p2pdma_distance (see {@link P2pDma}).
 * Where either is not: a file that places no device keeps the defaults above (every device under
 * one switch); a file that places devices refuses a device it did not place (a typo must not
 * grant a path), and a block device whose PCI function is not in the tree, unless an 'atomics'
 * rule names that very pair. A virtual block device
 * (a loop device, zram: sysfs shows it no PCI function) is on no bus to place it on; its bytes come
 * from memory or a backing file, so the defaults answer for it either way (or place it with a
 * 'place' rule). A no-p2p rule always refuses; an atomics rule always grants atomics on a pair with
 * a peer path.
 */
public final class Topology {
    /** The aperture a block device exposes where no {@code bar} rule names it: 1 TiB, room for every mapping. */
    public static final long DEFAULT_BLOCK_APERTURE = 1L << 40;
    private static final long WINDOW = 1L << 44;
    /** The distance pci_p2pdma_distance gives two devices under one switch: the default topology's. */
    static final int ONE_SWITCH = 4;

    /** What an endpoint is to the mapping contract. */
    public enum Kind {
        /** A block device: the provider whose BAR aperture the direct path's mappings take windows of. */
        BLOCK_DEVICE,
        /** A device that maps files and reads them (the proposal's device: a GPU, an FPGA, a NIC). */
        IMPORTER,
        /**
         * A device whose own memory its peers map (the provider of their mappings). Nothing
         * registers one yet: a software device that exports memory is registered as an {@link #IMPORTER}.
         */
        EXPORTER
    }

    /**
     * One device on the bus. busBase is where its aperture starts in the bus address space, so
     * that a DMA address says which device it reaches; busAddress(offset) is offset bytes into
     * the aperture (a window's {@link Aperture.Window#offset()}, not a device offset).
     *
     * @param name          the device's name ("nvme0n1", "gpu0"), one endpoint per name
     * @param kind          what it is to the contract
     * @param busBase       where its aperture starts in the bus address space
     * @param apertureBytes the size of its BAR aperture (its {@code bar} rule, else the default for its kind)
     * @param pciSlot       its PCI function's address where it has one ("0000:00:04.0")
     */
    public record Endpoint(String name, Kind kind, long busBase, long apertureBytes, Optional<String> pciSlot) {
        /**
         * {@return the bus address offset bytes into the aperture}
         *
         * @param offset bytes into the aperture (a window's offset)
         */
        public long busAddress(long offset) { return busBase + offset; }
    }

    /** A pair rule (no-p2p, atomics) and where it was written. */
    private record PairRule(String a, String b, String where) {
        boolean matches(String x, String y) {
            return (m(a, x) && m(b, y)) || (m(a, y) && m(b, x));
        }

        /** Whether the rule names both x and y, not by "*". */
        boolean names(String x, String y) {
            return (a.equals(x) && b.equals(y)) || (a.equals(y) && b.equals(x));
        }
    }

    /**
     * A pair's answers, by the two endpoints (name, bus window and PCI function, not the name
     * alone). They are dropped only with this Topology: the tree never changes once parsed, and an
     * endpoint is registered once per name for its life; an FsStack builds a new one when opened.
     */
    private record Pair(Endpoint client, Endpoint provider) {}

    private final Map<String, Endpoint> endpoints = new LinkedHashMap<>();
    private final Map<Pair, Reach> peerPaths = new ConcurrentHashMap<>(), atomicPaths = new ConcurrentHashMap<>();
    private final Map<String, Long> apertures;
    private final Map<String, Aperture.WhenFull> whenFull = new LinkedHashMap<>();
    private final List<PairRule> noP2p;
    private final List<PairRule> atomics;
    private final Bus bus;
    private final String source;

    private Topology(Map<String, Long> apertures, List<PairRule> noP2p, List<PairRule> atomics, Bus bus, String source) {
        this.apertures = apertures;
        this.noP2p = noP2p;
        this.atomics = atomics;
        this.bus = bus;
        this.source = source;
    }

    /** {@return the default topology on this machine's PCI tree (read from sysfs when first asked)} */
    public static Topology defaults() {
        return new Topology(Map.of(), List.of(), List.of(), new Bus(once(SysfsPci::machine)), "default topology");
    }

    /**
     * Reads a topology file (the format above).
     *
     * @param file the topology file
     * @return its rules on this machine's PCI tree
     * @throws IOException when the file cannot be read, or a line is bad: the message names the
     *         file, the line number and the rule's form
     */
    public static Topology load(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException("topology file " + file + " does not exist or is not a file");
        return parse(Files.readString(file), file.toString());
    }

    /**
     * Parses topology rules (the file format) from text on this machine's PCI tree.
     *
     * @param text   the rules, one a line
     * @param source what they came from, named in errors and reports (a file's path)
     * @return the topology
     * @throws IOException when a line is bad: the message names source, the line number and the rule's form
     */
    public static Topology parse(String text, String source) throws IOException {
        return parse(text, source, once(SysfsPci::machine));
    }

    /**
     * Parses topology rules on the given PCI tree.
     *
     * @param text    the rules, one a line
     * @param source  what they came from, named in errors and reports
     * @param machine the PCI tree the rules add to ({@link PciTree#EMPTY}: only what the text declares)
     * @return the topology
     * @throws IOException when a line is bad: the message names source, the line number and the rule's form
     */
    public static Topology parse(String text, String source, PciTree machine) throws IOException {
        return parse(text, source, () -> machine);
    }

    private static Topology parse(String text, String source, Supplier<PciTree> machine) throws IOException {
        Map<String, Long> bar = new LinkedHashMap<>();
        List<PairRule> noP2p = new ArrayList<>(), atomics = new ArrayList<>();
        Bus bus = new Bus(machine);
        Map<String, Aperture.WhenFull> full = new LinkedHashMap<>();
        List<String> lines = text.lines().toList();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).replaceFirst("#.*", "").trim();
            if (line.isEmpty()) continue;
            String[] w = line.split("\\s+");
            String where = source + ":" + (i + 1) + ": ";
            String rule = source + ":" + (i + 1) + ": '" + line + "'";
            switch (w[0]) {
                case "bar" -> {
                    if (w.length != 4) form(w, 3, where, line, "bar NAME SIZE [refuse|reclaim]");
                    bar.put(w[1], parseSize(w[2], where));
                    if (w.length == 4) full.put(w[1], whenFull(w[3], where));
                }
                case "no-p2p" -> {
                    form(w, 3, where, line, "no-p2p A B");
                    noP2p.add(new PairRule(w[1], w[2], rule));
                }
                case "atomics" -> {
                    form(w, 3, where, line, "atomics A B");
                    atomics.add(new PairRule(w[1], w[2], rule));
                }
                case "host-bridge" -> hostBridge(bus, w, where, line, rule);
                case "switch" -> {
                    form(w, 4, where, line, "switch NAME under PARENT");
                    under(w, where, line, "switch NAME under PARENT");
                    newName(bus, w[1], where, line);
                    PciTree.Node parent = parentFor(bus, w[3], where, line);
                    bus.declare(PciTree.Node.declared(w[1], PciTree.Kind.SWITCH_UPSTREAM, parent.name(), "switch"));
                }
                case "place" -> {
                    form(w, 4, where, line, "place DEVICE under PARENT");
                    under(w, where, line, "place DEVICE under PARENT");
                    newName(bus, w[1], where, line);
                    PciTree.Node parent = parentFor(bus, w[3], where, line);
                    bus.declare(PciTree.Node.declared(w[1], PciTree.Kind.DEVICE, parent.name(), "placed"));
                }
                case "acs" -> {
                    form(w, 3, where, line, "acs BRIDGE redirect|direct");
                    if (!w[2].equals("redirect") && !w[2].equals("direct")) {
                        throw new IOException(where + "'" + line + "': ACS is 'redirect' or 'direct'; the form is 'acs BRIDGE redirect|direct'");
                    }
                    PciTree.Node n = existing(bus, w[1], where, line, true);
                    bus.facts(n.name()).acsRedirect = new Bus.Stated<>(w[2].equals("redirect"), rule);
                }
                case "no-atomic-routing" -> {
                    form(w, 2, where, line, "no-atomic-routing BRIDGE");
                    PciTree.Node n = existing(bus, w[1], where, line, true);
                    if (n.kind() == PciTree.Kind.HOST_BRIDGE) {
                        throw new IOException(where + "'" + line + "': a host bridge routes no AtomicOps unless 'host-bridge " + n.name()
                                + " routes-atomics' says it does; no-atomic-routing is for switches and ports");
                    }
                    bus.facts(n.name()).noAtomicRouting = new Bus.Stated<>(true, rule);
                }
                case "completer" -> {
                    if (w.length < 3) throw new IOException(where + "expected 'completer DEVICE none|atomics32 atomics64 cas128', got '" + line + "'");
                    PciTree.Node n = existing(bus, w[1], where, line, false);
                    bus.facts(n.name()).completer = new Bus.Stated<>(Bus.widths(List.of(w).subList(2, w.length), where, line), rule);
                }
                default -> throw new IOException(where + "unknown rule '" + w[0] + "'; rules are bar, no-p2p, atomics, host-bridge, switch, place, acs, no-atomic-routing, completer");
            }
        }
        Topology t = new Topology(bar, List.copyOf(noP2p), List.copyOf(atomics), bus, source);
        t.whenFull.putAll(full);
        return t;
    }

    private static Aperture.WhenFull whenFull(String word, String where) throws IOException {
        for (Aperture.WhenFull f : Aperture.WhenFull.values()) if (f.code().equals(word)) return f;
        throw new IOException(where + "'" + word + "' is not what a full aperture does; give refuse (the default) or reclaim");
    }

    /**
     * {@return what the endpoint named does when its aperture is full: its {@code bar} rule's word, refuse by default}
     *
     * @param name the endpoint's name
     */
    public Aperture.WhenFull whenFull(String name) {
        return whenFull.getOrDefault(name, Aperture.WhenFull.REFUSE);
    }

    private static void form(String[] w, int words, String where, String line, String form) throws IOException {
        if (w.length != words) throw new IOException(where + "expected '" + form + "', got '" + line + "'");
    }

    private static void under(String[] w, String where, String line, String form) throws IOException {
        if (!w[2].equals("under")) throw new IOException(where + "expected '" + form + "', got '" + line + "'");
    }

    private static void hostBridge(Bus bus, String[] w, String where, String line, String rule) throws IOException {
        String form = "host-bridge NAME [routes-p2p] [routes-atomics]";
        if (w.length < 2 || w.length > 4) throw new IOException(where + "expected '" + form + "', got '" + line + "'");
        boolean p2p = false, atomics = false;
        for (int k = 2; k < w.length; k++) {
            switch (w[k]) {
                case "routes-p2p" -> p2p = true;
                case "routes-atomics" -> atomics = true;
                default -> throw new IOException(where + "'" + w[k] + "' in '" + line + "' is neither routes-p2p nor routes-atomics; the form is '" + form + "'");
            }
        }
        PciTree.Node n;
        if (Bus.isMachineName(w[1]) || bus.declaredNode(w[1]).isPresent()) {
            n = existing(bus, w[1], where, line, true);
            if (n.kind() != PciTree.Kind.HOST_BRIDGE) {
                throw new IOException(where + "'" + line + "': " + w[1] + " is a " + n.kind().label() + ", not a host bridge");
            }
        } else {
            n = PciTree.Node.declared(w[1], PciTree.Kind.HOST_BRIDGE, null, "host bridge");
            bus.declare(n);
        }
        if (p2p) bus.facts(n.name()).routesP2p = new Bus.Stated<>(true, rule);
        if (atomics) bus.facts(n.name()).routesAtomics = new Bus.Stated<>(true, rule);
    }

    private static void newName(Bus bus, String name, String where, String line) throws IOException {
        if (Bus.isMachineName(name) || name.contains("/") || name.equals("*")) {
            throw new IOException(where + "'" + line + "': " + name + " is a PCI address, a port or a pattern; "
                    + "name a new switch or device with a plain name (gpu0, sw0)");
        }
        if (bus.declaredNode(name).isPresent()) {
            throw new IOException(where + "'" + line + "': " + name + " is already in the tree; each switch and device is placed once");
        }
    }

    /** Where something placed under name hangs: a declared switch gives it a new downstream port. */
    private static PciTree.Node parentFor(Bus bus, String name, String where, String line) throws IOException {
        PciTree.Node p = existing(bus, name, where, line, true);
        if (p.declared() && p.kind() == PciTree.Kind.SWITCH_UPSTREAM) return bus.newPort(p);
        if (!p.declared() && p.kind() == PciTree.Kind.SWITCH_UPSTREAM) {
            throw new IOException(where + "'" + line + "': " + name + " is a switch's upstream port; place under one of its downstream ports"
                    + " (dmap topology lists them)");
        }
        return p;
    }

    private static PciTree.Node existing(Bus bus, String name, String where, String line, boolean bridge) throws IOException {
        Optional<PciTree.Node> n = bus.node(name);
        if (n.isEmpty()) {
            String hint = Bus.isMachineName(name)
                    ? "this machine has no PCI node " + name + " (dmap topology lists them)"
                    : "no " + name + " above this line: declare it first ('host-bridge " + name + "', 'switch " + name
                            + " under PARENT' or 'place " + name + " under PARENT')";
            throw new IOException(where + "'" + line + "': " + hint);
        }
        if (bridge && !n.get().kind().bridge()) {
            throw new IOException(where + "'" + line + "': " + name + " is a " + n.get().kind().label() + ", not a bridge or switch");
        }
        if (!bridge && n.get().kind().bridge()) {
            throw new IOException(where + "'" + line + "': " + name + " is a " + n.get().kind().label() + ", not a device");
        }
        return n.get();
    }

    /** The value get() gives, computed on the first call only. */
    private static <T> Supplier<T> once(Supplier<T> get) {
        return new Supplier<>() {
            private T value;

            @Override
            public synchronized T get() {
                if (value == null) value = get.get();
                return value;
            }
        };
    }

    /**
     * A size as topology files and dmap's options write it: "64M", "1G", "4096" (K, M, G, T are
     * powers of 1024; a trailing B or iB is allowed).
     *
     * @param s     the size
     * @param where what to put before the message, naming the file and line or the option
     * @return the bytes
     * @throws IOException when s is not a size (or is negative, or overflows a long)
     */
    public static long parseSize(String s, String where) throws IOException {
        String t = s.trim().toUpperCase(Locale.ROOT).replaceFirst("I?B$", "");
        long unit = 1;
        if (!t.isEmpty()) {
            switch (t.charAt(t.length() - 1)) {
                case 'K' -> unit = 1L << 10;
                case 'M' -> unit = 1L << 20;
                case 'G' -> unit = 1L << 30;
                case 'T' -> unit = 1L << 40;
                default -> unit = 1;
            }
        }
        String digits = unit == 1 ? t : t.substring(0, t.length() - 1);
        try {
            long v = Long.parseLong(digits);
            if (v < 0) throw new NumberFormatException();
            return Math.multiplyExact(v, unit);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IOException(where + "'" + s + "' is not a size (examples: 4096, 64M, 2G)");
        }
    }

    /**
     * The endpoint with this name, registered on first sight (later calls return the first one).
     *
     * @param name            the device's name
     * @param kind            what it is, on first sight
     * @param pciSlot         its PCI function's address, where it has one
     * @param defaultAperture its aperture where no {@code bar} rule names it
     * @return the endpoint, with its own bus address window
     */
    public synchronized Endpoint endpoint(String name, Kind kind, Optional<String> pciSlot, long defaultAperture) {
        return endpoints.computeIfAbsent(name, n -> new Endpoint(n, kind, WINDOW * (endpoints.size() + 1),
                apertures.getOrDefault(n, defaultAperture), pciSlot));
    }

    /**
     * Which endpoint a bus address falls in, as the bus routes a DMA.
     *
     * @param busAddress a bus address
     * @return the endpoint whose bus address window holds it, or empty
     */
    public synchronized Optional<Endpoint> route(long busAddress) {
        return endpoints.values().stream()
                .filter(e -> busAddress >= e.busBase() && busAddress < e.busBase() + WINDOW).findFirst();
    }

    /**
     * {@return whether client can reach provider's memory: {@link #peerPath}'s {@link Reach#allowed()}}
     *
     * @param client   the device that does the DMA
     * @param provider the device whose memory it reaches
     */
    public boolean peerToPeer(Endpoint client, Endpoint provider) {
        return peerPath(client, provider).allowed();
    }

    /**
     * {@return whether client's AtomicOps reach provider's memory (SUPPORT_ATOMIC_OP): {@link #atomicPath}'s {@link Reach#allowed()}}
     *
     * @param client   the device that does the AtomicOps
     * @param provider the device whose memory completes them
     */
    public boolean atomics(Endpoint client, Endpoint provider) {
        return atomicPath(client, provider).allowed();
    }

    /**
     * {@return how client reaches provider's memory: the distance, the route, and why (or why not)}
     * The answer is kept for this pair of endpoints as long as this Topology lives: the tree never
     * changes once parsed.
     *
     * @param client   the device that does the DMA
     * @param provider the device whose memory it reaches
     */
    public Reach peerPath(Endpoint client, Endpoint provider) {
        return peerPaths.computeIfAbsent(new Pair(client, provider), k -> answerPeerPath(client, provider));
    }

    /**
     * {@return how client's AtomicOps reach provider's memory, where the path and provider carry
     * them; refused with the reason where they do not}
     *
     * @param client   the device that does the AtomicOps
     * @param provider the device whose memory completes them
     */
    public Reach atomicPath(Endpoint client, Endpoint provider) {
        return atomicPaths.computeIfAbsent(new Pair(client, provider), k -> answerAtomicPath(client, provider));
    }

    private Reach answerPeerPath(Endpoint client, Endpoint provider) {
        for (PairRule r : noP2p) {
            if (r.matches(client.name(), provider.name())) return new Reach.Refused(-1, "", r.where());
        }
        Optional<PciTree.Node> c = placed(client);
        Optional<PciTree.Node> p = c.isEmpty() ? Optional.empty() : placed(provider);
        if (c.isEmpty() || p.isEmpty()) {
            // An 'atomics' rule that names the pair vouches for it: the defaults answer.
            boolean vouched = atomics.stream().anyMatch(r -> r.names(client.name(), provider.name()));
            Optional<String> notInTree = vouched ? Optional.empty() : notInTree(client).or(() -> notInTree(provider));
            if (notInTree.isPresent()) return new Reach.Refused(-1, client.name() + " > " + provider.name(), notInTree.get());
            String unplaced = c.isEmpty() ? client.name() : provider.name();
            return new Reach.Direct(ONE_SWITCH, client.name() + " > " + provider.name(), unplaced
                    + " is not placed in the PCI tree; the default topology puts every device under one switch");
        }
        return P2pDma.distance(bus, c.get(), p.get());
    }

    private Reach answerAtomicPath(Endpoint client, Endpoint provider) {
        Reach path = peerPath(client, provider);
        if (!path.allowed()) return new Reach.Refused(path.distance(), path.route(), "no peer-to-peer path: " + path.why());
        for (PairRule r : atomics) {
            if (r.matches(client.name(), provider.name())) {
                return path instanceof Reach.ThroughHostBridge h
                        ? new Reach.ThroughHostBridge(h.distance(), h.route(), h.hostBridge(), r.where())
                        : new Reach.Direct(path.distance(), path.route(), r.where());
            }
        }
        Optional<PciTree.Node> c = placed(client);
        Optional<PciTree.Node> p = c.isEmpty() ? Optional.empty() : placed(provider);
        if (c.isEmpty() || p.isEmpty()) {
            String unplaced = c.isEmpty() ? client.name() : provider.name();
            return new Reach.Refused(path.distance(), path.route(), "no 'atomics " + client.name() + " " + provider.name()
                    + "' rule, and " + unplaced + " is not placed in the PCI tree (the default path carries no atomics)");
        }
        return P2pDma.atomics(bus, c.get(), p.get(), provider.kind(), path);
    }

    /**
     * Why e, not in the tree, is refused where the file places devices: a device it did not place
     * (a typo, a forgotten line), a block device whose PCI function the tree does not have. Empty
     * where e is in the tree, where the file places no device (the default topology answers), and
     * for a virtual block device (no PCI function: a loop device), which the defaults answer for.
     */
    private Optional<String> notInTree(Endpoint e) {
        if (placed(e).isPresent() || placedDevices().isEmpty()) return Optional.empty();
        if (e.pciSlot().isPresent()) {
            return Optional.of(e.name() + "'s PCI function " + e.pciSlot().get() + " is not in the PCI tree ("
                    + source + " places devices, so the default topology does not answer); place it with 'place "
                    + e.name() + " under PARENT'");
        }
        if (e.kind() == Kind.BLOCK_DEVICE) return Optional.empty();
        return Optional.of(e.name() + " is not placed: add 'place " + e.name() + " under PARENT' to " + source
                + " (it places " + String.join(", ", placedDevices()) + "; a device it does not place has no path)");
    }

    /**
     * Where e sits in the tree: where a 'place' rule put it, else (a block device on PCI) at its
     * function as sysfs shows it; empty where neither.
     */
    Optional<PciTree.Node> placed(Endpoint e) {
        Optional<PciTree.Node> d = bus.declaredNode(e.name()).filter(n -> n.kind() == PciTree.Kind.DEVICE);
        if (d.isPresent()) return d;
        return e.pciSlot().flatMap(bus::node);
    }

    /** {@return the names of the devices the file placed, in order} */
    public List<String> placedDevices() {
        return bus.nodes(false).stream().filter(n -> n.kind() == PciTree.Kind.DEVICE).map(PciTree.Node::name).toList();
    }

    /** {@return the machine's PCI tree as sysfs shows it (read now if not yet)} */
    public PciTree machine() { return bus.machine(); }

    /** {@return every node this topology answers from: the machine's, then the file's} */
    public List<PciTree.Node> tree() { return bus.nodes(true); }

    /**
     * {@return what matters for peer traffic at n, in short phrases: ACS, atomics routing,
     * completer widths, host bridge routing}
     *
     * @param n a node of {@link #tree()}
     */
    public List<String> flags(PciTree.Node n) {
        Kind kind;
        synchronized (this) {
            Endpoint e = endpoints.get(n.name());
            kind = e == null ? Kind.IMPORTER : e.kind();
        }
        return P2pDma.flags(bus, n, kind);
    }

    private static boolean m(String pattern, String name) {
        return pattern.equals("*") || pattern.equals(name);
    }

    /** The endpoints registered so far, in order. */
    synchronized List<Endpoint> endpoints() {
        return new ArrayList<>(endpoints.values());
    }

    /** {@return where the rules came from: "default topology" or the file} */
    public String source() { return source; }
}
