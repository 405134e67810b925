package io.directmap.pci;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A copy of /sys's PCI and block parts in a test's folder, laid out as the kernel lays them out:
 * devices/pciDDDD:BB/ADDR/... directories, bus/pci/devices/ADDR links to them, class/block/NAME
 * with size and a device link. The folder is the test's @TempDir, which JUnit removes.
 */
final class FakeSysfs {
    final Path root;

    FakeSysfs(Path root) {
        this.root = root;
    }

    /** The test VM as captured (src/test/resources/io/directmap/pci/vm): six functions on bus 00, vda on 0000:00:02.0. */
    static FakeSysfs vm(Path dir) throws IOException {
        FakeSysfs s = new FakeSysfs(dir);
        for (String a : new String[] {"0000:00:00.0", "0000:00:01.0", "0000:00:02.0", "0000:00:03.0", "0000:00:04.0", "0000:00:05.0"}) {
            Path f = s.function("devices/pci0000:00/" + a, resource(a + ".config"));
            Files.write(f.resolve("resource"), resource(a + ".resource"));
            Files.write(f.resolve("class"), resource(a + ".class"));
        }
        s.disk("vda", 2 * 1024 * 1024, "devices/pci0000:00/0000:00:02.0/virtio1");
        s.disk("loop0", 0, null);
        s.disk("loop1", 2048, null);
        return s;
    }

    static byte[] resource(String name) {
        try (InputStream in = FakeSysfs.class.getResourceAsStream("vm/" + name)) {
            if (in == null) throw new IllegalStateException("test resource io/directmap/pci/vm/" + name + " is missing");
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A function at devices/.../ADDR with this config space, linked from bus/pci/devices; returns its directory. */
    Path function(String path, byte[] config) throws IOException {
        Path dir = Files.createDirectories(root.resolve(path));
        Files.write(dir.resolve("config"), config);
        Path bus = Files.createDirectories(root.resolve("bus/pci/devices"));
        Files.createSymbolicLink(bus.resolve(dir.getFileName().toString()), dir);
        return dir;
    }

    /** A whole disk of sectors 512-byte sectors; device is where its device link points (null: none, a loop device). */
    void disk(String name, long sectors, String device) throws IOException {
        Path d = Files.createDirectories(root.resolve("class/block/" + name));
        Files.writeString(d.resolve("size"), sectors + "\n");
        if (device != null) {
            Path target = Files.createDirectories(root.resolve(device));
            Files.createSymbolicLink(d.resolve("device"), target);
        }
    }

    Path cpuinfo(String vendor, int family) throws IOException {
        return Files.writeString(root.resolve("cpuinfo"), "processor\t: 0\nvendor_id\t: " + vendor + "\ncpu family\t: " + family + "\n");
    }

    PciTree read(String vendor, int family) throws IOException {
        return SysfsPci.read(root, cpuinfo(vendor, family));
    }

    /**
     * A hand-made config space: a PCI Express capability (version 2) at 0x40 when portType >= 0,
     * with these Device Capabilities 2 and Device Control 2; an ACS capability at 0x100 with this
     * control register when acsControl >= 0 (then the space is 4096 bytes, as root reads it).
     */
    static byte[] config(int vendor, int device, int classCode, int portType, int devCap2, int devCtl2, int acsControl) {
        byte[] b = new byte[acsControl >= 0 ? 4096 : 256];
        le16(b, 0x00, vendor);
        le16(b, 0x02, device);
        b[0x09] = (byte) classCode;
        b[0x0a] = (byte) (classCode >> 8);
        b[0x0b] = (byte) (classCode >> 16);
        b[0x0e] = (byte) ((classCode >> 8) == 0x0604 ? 1 : 0);
        if (portType >= 0) {
            le16(b, 0x06, 0x0010);                 // PCI_STATUS_CAP_LIST
            b[0x34] = 0x40;
            b[0x40] = 0x10;                        // PCI_CAP_ID_EXP, next 0
            le16(b, 0x42, 0x2 | portType << 4);    // version 2, port type
            le16(b, 0x40 + 0x24, devCap2 & 0xffff);
            le16(b, 0x40 + 0x26, devCap2 >>> 16);
            le16(b, 0x40 + 0x28, devCtl2);
        }
        if (acsControl >= 0) {
            le16(b, 0x100, 0x000d);                // PCI_EXT_CAP_ID_ACS, version 1, next 0
            le16(b, 0x102, 0x0001);
            le16(b, 0x104, 0x007f);                // every ACS control implemented
            le16(b, 0x106, acsControl);
        }
        return b;
    }

    private static void le16(byte[] b, int at, int v) {
        b[at] = (byte) v;
        b[at + 1] = (byte) (v >> 8);
    }
}
