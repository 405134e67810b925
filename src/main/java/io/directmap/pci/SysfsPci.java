package io.directmap.pci;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Reads the PCI hierarchy from sysfs with plain file reads (Documentation/PCI/sysfs-pci.rst):
 * /sys/bus/pci/devices/ADDR links to /sys/devices/.../pciDDDD:BB/ADDR/.../ADDR, whose path is the
 * parent chain; each function's class, config and resource files say what it is; each
 * /sys/class/block/NAME/device link says which function a disk sits on. A missing, short or odd
 * file is a note on the node or a problem of the tree, never an exception.
 */
public final class SysfsPci {
    private SysfsPci() {}

    /** {@return this machine's tree, from /sys and /proc/cpuinfo; what could not be read is in its problems} */
    public static PciTree machine() {
        return read(Path.of("/sys"), Path.of("/proc/cpuinfo"));
    }

    /**
     * The tree under sysRoot (a copy of /sys in tests); never throws for a missing or odd file.
     *
     * @param sysRoot where sysfs is mounted, or a copy of it
     * @param cpuinfo /proc/cpuinfo or a copy (says whether the CPU routes peer traffic); may be absent
     * @return the tree; what could not be read is in its problems and its nodes' notes
     */
    public static PciTree read(Path sysRoot, Path cpuinfo) {
        List<String> problems = new ArrayList<>();
        Map<String, PciTree.Node> nodes = new TreeMap<>();
        Path bus = sysRoot.resolve("bus/pci/devices");
        if (!Files.isDirectory(bus)) {
            problems.add("no " + bus + ": this machine shows no PCI bus (a container without /sys, or a machine without PCI)");
        } else {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(bus)) {
                for (Path link : ds) {
                    String addr = link.getFileName().toString();
                    if (!addr.matches(PciTree.FUNCTION)) continue;
                    try {
                        Path real = link.toRealPath();
                        nodes.put(addr, function(addr, real, nodes));
                    } catch (IOException | RuntimeException e) {
                        problems.add(link + ": " + e.getMessage());
                    }
                }
            } catch (IOException e) {
                problems.add("cannot list " + bus + ": " + e.getMessage());
            }
        }
        // Host bridges are not PCI functions: they appear only as the pciDDDD:BB directory above.
        // They come first, then the functions in address order (the first on a root bus is the
        // one the kernel's whitelist looks at).
        Map<String, PciTree.Node> all = new TreeMap<>();
        for (PciTree.Node n : nodes.values()) {
            if (n.parent().matches(PciTree.HOST) && !all.containsKey(n.parent())) {
                all.put(n.parent(), new PciTree.Node(n.parent(), PciTree.Kind.HOST_BRIDGE, null, "", "host bridge",
                        List.of(), Optional.empty(), false, List.of()));
            }
        }
        Map<String, PciTree.Node> ordered = new LinkedHashMap<>(all);
        ordered.putAll(nodes);
        return new PciTree(ordered, blockDevices(sysRoot.resolve("class/block")), cpuRoutesP2p(cpuinfo), problems);
    }

    /**
     * One function from its real directory. The parent is the directory above when that is a
     * function, else the nearest pciDDDD:BB above (a VMD or Hyper-V bus puts other directories
     * between them).
     */
    private static PciTree.Node function(String addr, Path real, Map<String, PciTree.Node> seen) {
        List<String> notes = new ArrayList<>();
        String parent = null;
        for (Path p = real.getParent(); p != null && p.getFileName() != null; p = p.getParent()) {
            String n = p.getFileName().toString();
            if (n.matches(PciTree.FUNCTION) || n.matches(PciTree.HOST)) { parent = n; break; }
        }
        if (parent == null) {
            parent = "pci" + addr.substring(0, addr.lastIndexOf(':'));
            notes.add(real + " has no pciDDDD:BB directory above it; put under " + parent);
        }
        byte[] config = new byte[0];
        try {
            config = Files.readAllBytes(real.resolve("config"));
        } catch (IOException e) {
            notes.add("config unreadable: " + e.getMessage());
        }
        ConfigSpace cs = ConfigSpace.parse(config);
        notes.addAll(cs.notes());
        int classCode = cs.classCode();
        if (classCode < 0) classCode = hex(read(real.resolve("class"), notes), -1);
        PciTree.Kind kind = kind(classCode, cs.pcie());
        List<PciTree.Bar> bars = bars(real.resolve("resource"), kind, notes);
        String id = cs.vendor() >= 0 && cs.device() >= 0 ? cs.id() : "";
        return new PciTree.Node(addr, kind, parent, id, describe(classCode, cs), bars, Optional.of(cs), false, notes);
    }

    /** A bridge's kind from its class (0x0604 PCI bridge) and, on PCI Express, its port type. */
    static PciTree.Kind kind(int classCode, Optional<ConfigSpace.Pcie> pcie) {
        if ((classCode >> 8) != 0x0604 && (classCode >> 8) != 0x0609) return PciTree.Kind.ENDPOINT;
        if (pcie.isEmpty()) return PciTree.Kind.PCI_BRIDGE;
        return switch (pcie.get().portType()) {
            case ConfigSpace.TYPE_ROOT_PORT -> PciTree.Kind.ROOT_PORT;
            case ConfigSpace.TYPE_UPSTREAM -> PciTree.Kind.SWITCH_UPSTREAM;
            case ConfigSpace.TYPE_DOWNSTREAM -> PciTree.Kind.SWITCH_DOWNSTREAM;
            default -> PciTree.Kind.PCI_BRIDGE;
        };
    }

    private static String describe(int classCode, ConfigSpace cs) {
        String base = switch (classCode >> 16) {
            case 0x00 -> "unclassified";
            case 0x01 -> "mass storage";
            case 0x02 -> "network";
            case 0x03 -> "display";
            case 0x04 -> "multimedia";
            case 0x05 -> "memory";
            case 0x06 -> switch ((classCode >> 8) & 0xff) {
                case 0x00 -> "host bridge function";
                case 0x01 -> "ISA bridge";
                case 0x04, 0x09 -> cs.pcie().map(ConfigSpace.Pcie::portTypeName).orElse("PCI bridge");
                default -> "bridge";
            };
            case 0x07 -> "communication";
            case 0x08 -> "system peripheral";
            case 0x0c -> "serial bus";
            case 0x12 -> "processing accelerator";
            case 0xff -> "vendor specific";
            case -1 -> "unknown class";
            default -> String.format("class 0x%06x", classCode);
        };
        return base;
    }

    /** BARs 0-5 of sysfs's resource file ("start end flags" in hex, one line each); bridges list windows after them. */
    static List<PciTree.Bar> bars(Path resource, PciTree.Kind kind, List<String> notes) {
        List<PciTree.Bar> bars = new ArrayList<>();
        String text = read(resource, notes);
        if (text.isEmpty()) return bars;
        List<String> lines = text.lines().toList();
        for (int i = 0; i < Math.min(6, lines.size()); i++) {
            String[] w = lines.get(i).trim().split("\\s+");
            if (w.length != 3) {
                notes.add(resource + " line " + (i + 1) + " is not 'start end flags'");
                continue;
            }
            long start = hexLong(w[0]), end = hexLong(w[1]), flags = hexLong(w[2]);
            if (start < 0 || end < 0 || flags < 0) {
                notes.add(resource + " line " + (i + 1) + " is not hexadecimal");
                continue;
            }
            if (flags == 0 || end < start || (start == 0 && end == 0)) continue;
            // include/linux/ioport.h: IORESOURCE_IO 0x100, _MEM 0x200, _PREFETCH 0x2000, _MEM_64 0x100000.
            String what = (flags & 0x100) != 0 ? "io" : (flags & 0x100000) != 0 ? "mem64" : "mem32";
            if ((flags & 0x2000) != 0) what += " prefetchable";
            bars.add(new PciTree.Bar(i, end - start + 1, what));
        }
        return bars;
    }

    /** Each whole disk of /sys/class/block and the function its device link leads to. */
    static Map<String, PciTree.BlockFunction> blockDevices(Path classBlock) {
        Map<String, PciTree.BlockFunction> out = new TreeMap<>();
        if (!Files.isDirectory(classBlock)) return out;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(classBlock)) {
            for (Path dev : ds) {
                String name = dev.getFileName().toString();
                if (Files.exists(dev.resolve("partition"))) continue;
                out.put(name, blockFunction(name, dev));
            }
        } catch (IOException e) {
            // An unlistable /sys/class/block: no block devices to place, the tree stands.
        }
        return out;
    }

    private static PciTree.BlockFunction blockFunction(String name, Path dev) {
        long sectors;
        try {
            sectors = Long.parseLong(Files.readString(dev.resolve("size")).trim());
        } catch (IOException | RuntimeException e) {
            sectors = 0;  // unreadable: shown as empty
        }
        PciTree.BlockFunction f = where(name, dev);
        return new PciTree.BlockFunction(f.name(), f.function(), f.why(), sectors * 512);
    }

    private static PciTree.BlockFunction where(String name, Path dev) {
        Path device = dev.resolve("device");
        if (!Files.exists(device)) {
            return new PciTree.BlockFunction(name, Optional.empty(), "no PCI function: " + name + " has no device link (a virtual device such as loop or zram)", 0);
        }
        try {
            for (Path p = device.toRealPath(); p != null && p.getFileName() != null; p = p.getParent()) {
                String n = p.getFileName().toString();
                if (n.matches(PciTree.FUNCTION)) return new PciTree.BlockFunction(name, Optional.of(n), "sysfs: " + device.toRealPath(), 0);
            }
            return new PciTree.BlockFunction(name, Optional.empty(), "no PCI function above " + device.toRealPath(), 0);
        } catch (IOException e) {
            return new PciTree.BlockFunction(name, Optional.empty(), "no PCI function: " + device + " unreadable (" + e.getMessage() + ")", 0);
        }
    }

    /** pci_p2pdma.c's cpu_supports_p2pdma(): any AMD CPU of family 0x17 (Zen) or later routes peer traffic. */
    static Optional<String> cpuRoutesP2p(Path cpuinfo) {
        String text;
        try {
            text = Files.readString(cpuinfo);
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
        String vendor = field(text, "vendor_id"), family = field(text, "cpu family");
        if (!"AuthenticAMD".equals(vendor)) return Optional.empty();
        try {
            int f = Integer.parseInt(family);
            return f >= 0x17 ? Optional.of("the CPU is AMD family 0x" + Integer.toHexString(f) + ", Zen or later: cpu_supports_p2pdma")
                    : Optional.empty();
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }

    private static String field(String cpuinfo, String key) {
        for (String line : cpuinfo.lines().toList()) {
            int colon = line.indexOf(':');
            if (colon > 0 && line.substring(0, colon).trim().equals(key)) return line.substring(colon + 1).trim();
        }
        return "";
    }

    private static String read(Path file, List<String> notes) {
        try {
            return Files.readString(file).trim();
        } catch (IOException | RuntimeException e) {
            notes.add(file.getFileName() + " unreadable: " + e.getMessage());
            return "";
        }
    }

    private static int hex(String s, int otherwise) {
        long v = hexLong(s);
        return v < 0 || v > Integer.MAX_VALUE ? otherwise : (int) v;
    }

    private static long hexLong(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        if (t.startsWith("0x")) t = t.substring(2);
        try {
            return t.isEmpty() ? -1 : Long.parseUnsignedLong(t, 16);
        } catch (NumberFormatException e) {
            return -1;
        }
    }
}
