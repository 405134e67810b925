package io.directmap.pci;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Where devices sit and what the bus between them allows: which pairs can do peer-to-peer, which
 * paths carry PCIe atomics, how much BAR aperture each device exposes. Real devices take their PCI
 * address from sysfs; software devices exist only here.
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
 * </pre>
 */
public final class Topology {
    /** The aperture a block device exposes unless a {@code bar} rule says otherwise: 1 TiB. */
    public static final long DEFAULT_BLOCK_APERTURE = 1L << 40;
    private static final long WINDOW = 1L << 44;

    /** What an endpoint is to the proposal. */
    public enum Kind {
        /** A block device: the peer a file's direct mapping reads from. */
        BLOCK_DEVICE,
        /** A device that maps others' memory and reads through the mapping (a GPU, an accelerator). */
        IMPORTER,
        /** A device whose driver exports its memory through a device file's mmap. */
        EXPORTER
    }

    /**
     * One device on the bus. busBase is where its aperture starts in the bus address space, so
     * that a DMA address says which device it reaches; busAddress(offset) is offset bytes into
     * the aperture (a window's {@link Aperture.Window#offset()}, not a device offset).
     *
     * @param name the device's name: loop0, nvme0n1, gpu0
     * @param kind what it is to the proposal
     * @param busBase where its aperture starts in the bus address space
     * @param apertureBytes how much of it peers can reach (its BAR)
     * @param pciSlot its PCI address from sysfs, or empty for a software device
     */
    public record Endpoint(String name, Kind kind, long busBase, long apertureBytes, Optional<String> pciSlot) {
        /**
         * {@return the bus address that reaches offset of this device}
         *
         * @param offset a byte offset on the device
         */
        public long busAddress(long offset) { return busBase + offset; }
    }

    private final Map<String, Endpoint> endpoints = new LinkedHashMap<>();
    private final Map<String, Long> apertures;
    private final Map<String, Aperture.WhenFull> whenFull = new LinkedHashMap<>();
    private final Set<List<String>> noP2p;
    private final Set<List<String>> atomics;
    private final String source;

    private Topology(Map<String, Long> apertures, Set<List<String>> noP2p, Set<List<String>> atomics, String source) {
        this.apertures = apertures;
        this.noP2p = noP2p;
        this.atomics = atomics;
        this.source = source;
    }

    /** {@return the default topology: every device a peer of every other, no atomics, 1 TiB apertures} */
    public static Topology defaults() {
        return new Topology(Map.of(), Set.of(), Set.of(), "default topology");
    }

    /**
     * Reads a topology file.
     *
     * @param file the rules, one a line
     * @return the topology they describe
     * @throws IOException when the file cannot be read, or a bad line (the message gives the file,
     *         the line number and the rule's form)
     */
    public static Topology load(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException("topology file " + file + " does not exist or is not a file");
        return parse(Files.readString(file), file.toString());
    }

    /**
     * Parses topology rules (the file format) from text.
     *
     * @param text the rules, one a line
     * @param source what names them in errors and reports
     * @return the topology they describe
     * @throws IOException for a bad line (the message gives source, the line number and the rule's form)
     */
    public static Topology parse(String text, String source) throws IOException {
        Map<String, Long> bar = new LinkedHashMap<>();
        Set<List<String>> noP2p = new HashSet<>(), atomics = new HashSet<>();
        Map<String, Aperture.WhenFull> full = new LinkedHashMap<>();
        List<String> lines = text.lines().toList();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).replaceFirst("#.*", "").trim();
            if (line.isEmpty()) continue;
            String[] w = line.split("\\s+");
            String where = source + ":" + (i + 1) + ": ";
            if (w.length != 3 && !(w.length == 4 && w[0].equals("bar"))) {
                throw new IOException(where + "expected 'bar NAME SIZE [refuse|reclaim]', 'no-p2p A B' or 'atomics A B', got '" + line + "'");
            }
            switch (w[0]) {
                case "bar" -> {
                    bar.put(w[1], parseSize(w[2], where));
                    if (w.length == 4) full.put(w[1], whenFull(w[3], where));
                }
                case "no-p2p" -> noP2p.add(List.of(w[1], w[2]));
                case "atomics" -> atomics.add(List.of(w[1], w[2]));
                default -> throw new IOException(where + "unknown rule '" + w[0] + "'; rules are bar, no-p2p, atomics");
            }
        }
        Topology t = new Topology(bar, noP2p, atomics, source);
        t.whenFull.putAll(full);
        return t;
    }

    private static Aperture.WhenFull whenFull(String word, String where) throws IOException {
        for (Aperture.WhenFull f : Aperture.WhenFull.values()) if (f.code().equals(word)) return f;
        throw new IOException(where + "'" + word + "' is not what a full aperture does; give refuse (the default) or reclaim");
    }

    /** What the endpoint named does when its aperture is full: its {@code bar} rule's word, refuse by default. */
    public Aperture.WhenFull whenFull(String name) {
        return whenFull.getOrDefault(name, Aperture.WhenFull.REFUSE);
    }

    /**
     * Reads a size: "64M", "1G", "4096".
     *
     * @param s the size, with an optional K, M, G or T suffix (powers of 1024)
     * @param where what the message of a bad size starts with (file and line)
     * @return the bytes
     * @throws IOException when s is not a size
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
     * The endpoint with this name, registered on first sight (later calls return the first).
     *
     * @param name the device's name
     * @param kind what it is, on first sight
     * @param pciSlot its PCI address, on first sight
     * @param defaultAperture its aperture unless a {@code bar} rule names it
     * @return the endpoint
     */
    public synchronized Endpoint endpoint(String name, Kind kind, Optional<String> pciSlot, long defaultAperture) {
        return endpoints.computeIfAbsent(name, n -> new Endpoint(n, kind, WINDOW * (endpoints.size() + 1),
                apertures.getOrDefault(n, defaultAperture), pciSlot));
    }

    /**
     * Which endpoint a bus address falls in, as the bus routes a DMA.
     *
     * @param busAddress an address a device's table holds
     * @return the endpoint it reaches, or empty when none
     */
    public synchronized Optional<Endpoint> route(long busAddress) {
        return endpoints.values().stream()
                .filter(e -> busAddress >= e.busBase() && busAddress < e.busBase() + WINDOW).findFirst();
    }

    /**
     * {@return whether the bus lets a and b do peer-to-peer DMA (no {@code no-p2p} rule names them)}
     *
     * @param a one endpoint
     * @param b the other
     */
    public boolean peerToPeer(Endpoint a, Endpoint b) {
        return !matches(noP2p, a.name(), b.name());
    }

    /**
     * {@return whether the path between a and b carries PCIe atomics (an {@code atomics} rule names them)}
     *
     * @param a one endpoint
     * @param b the other
     */
    public boolean atomics(Endpoint a, Endpoint b) {
        return matches(atomics, a.name(), b.name());
    }

    private static boolean matches(Set<List<String>> rules, String a, String b) {
        for (List<String> r : rules) {
            if ((m(r.get(0), a) && m(r.get(1), b)) || (m(r.get(0), b) && m(r.get(1), a))) return true;
        }
        return false;
    }

    private static boolean m(String pattern, String name) {
        return pattern.equals("*") || pattern.equals(name);
    }

    /** {@return the endpoints registered so far, in the order they were} */
    public synchronized List<Endpoint> endpoints() {
        return new ArrayList<>(endpoints.values());
    }

    /** {@return where the rules came from: "default topology" or the file} */
    public String source() { return source; }
}
