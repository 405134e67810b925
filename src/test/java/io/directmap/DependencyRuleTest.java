package io.directmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Dependencies point one way: {@code cli} (the dmap command) on top, the tools ({@code tools}:
 * the torture, the bench, scratch file systems, command running) under it, the library's packages
 * under both. Among those, the device_map contract ({@code mm}) is below everything that
 * implements or calls it:
 *
 * <pre>
 *     cli -> tools -> device -> mm
 *     cli -> serve -> device, mm (and sys for openat2, statx, SIOCOUTQ)
 *     fs -> block -> mm -> pci, sys, lang, fault
 *     fs -> dmabuf -> mm
 * </pre>
 *
 * so a device never sees a filesystem's or block device's types, and an exporter other than the
 * filesystem can implement the same callbacks. Read from the source tree: a file of a lower
 * package that names a package above it, in an import or spelt out in the code, fails here with
 * the file and the line.
 */
class DependencyRuleTest {
    static final Path MAIN = Path.of("src/main/java/io/directmap"), TEST = Path.of("src/test/java/io/directmap");
    static final Pattern CLI = Pattern.compile("\\bio\\.directmap\\.cli\\b"), TOOLS = Pattern.compile("\\bio\\.directmap\\.tools\\b");
    static final Pattern FS = Pattern.compile("\\bio\\.directmap\\.fs\\b"), BLOCK = Pattern.compile("\\bio\\.directmap\\.block\\b"),
            DEVICE = Pattern.compile("\\bio\\.directmap\\.device\\b"),
            DMABUF = Pattern.compile("\\bio\\.directmap\\.dmabuf\\b");

    @Test
    void theLibraryNamesNeitherTheToolsNorTheCommand() throws IOException {
        List<String> found = new ArrayList<>();
        for (Path dir : packages(MAIN)) {
            String name = dir.getFileName().toString();
            if (name.equals("cli") || name.equals("tools")) continue;
            found.addAll(mentions(dir, CLI));
            found.addAll(mentions(dir, TOOLS));
        }
        assertEquals(List.of(), found, "a package below the tools and the command reaches up");
    }

    static final Pattern SERVE = Pattern.compile("\\bio\\.directmap\\.serve\\b");

    @Test
    void onlyTheCommandNamesTheServer() throws IOException {
        List<String> found = new ArrayList<>();
        for (Path dir : packages(MAIN)) {
            String name = dir.getFileName().toString();
            if (!name.equals("cli") && !name.equals("serve")) found.addAll(mentions(dir, SERVE));
        }
        assertEquals(List.of(), found, "dmap serve sits beside the tools, under the command: nothing below names it");
    }

    @Test
    void theServerIsAnImporterThatSeesTheContractNotTheFilesystem() throws IOException {
        Path serve = MAIN.resolve("serve");
        List<String> found = new ArrayList<>();
        found.addAll(mentions(serve, FS));
        found.addAll(mentions(serve, BLOCK));
        found.addAll(mentions(serve, CLI));
        found.addAll(mentions(serve, TOOLS));
        assertEquals(List.of(), found, "the NIC importer maps files through mm (AddressSpace, Vma, notifiers) and device (its Binding)");
    }

    @Test
    void theToolsDoNotNameTheCommand() throws IOException {
        assertEquals(List.of(), mentions(MAIN.resolve("tools"), CLI), "the tools are called by the command, never the other way");
    }

    @Test
    void theServeBenchMeasuresAnyServerSoNamesNone() throws IOException {
        assertEquals(List.of(), mentions(MAIN.resolve("tools").resolve("serve"), Pattern.compile("\\bio\\.directmap\\.serve\\b")),
                "tools.serve measures dmap serve and nginx alike, over HTTP only");
    }

    @Test
    void theContractNamesNoneOfItsImplementersOrCallers() throws IOException {
        Path mm = MAIN.resolve("mm");
        List<String> found = new ArrayList<>();
        found.addAll(mentions(mm, FS));
        found.addAll(mentions(mm, BLOCK));
        found.addAll(mentions(mm, DEVICE));
        found.addAll(mentions(mm, DMABUF));
        assertEquals(List.of(), found, "mm is the device_map contract: the filesystem, the block devices and the importers use it, never the other way");
    }

    @Test
    void theDeviceSeesOnlyTheContract() throws IOException {
        Path device = MAIN.resolve("device");
        List<String> found = new ArrayList<>();
        found.addAll(mentions(device, FS));
        found.addAll(mentions(device, BLOCK));
        assertEquals(List.of(), found, "an importer reaches a mapping through mm only (VmOperations, DeviceMapping, Segment, Peer)");
    }

    /**
     * dma_buf is the meeting point of an exporter and its importers, as drivers/dma-buf is: it
     * speaks the contract and knows neither the file system that exports nor the devices that import.
     */
    @Test
    void theDmaBufNamesNeitherItsExporterNorItsImporters() throws IOException {
        Path dmabuf = MAIN.resolve("dmabuf");
        List<String> found = new ArrayList<>();
        found.addAll(mentions(dmabuf, FS));
        found.addAll(mentions(dmabuf, BLOCK));
        found.addAll(mentions(dmabuf, DEVICE));
        assertEquals(List.of(), found, "dmabuf sees only the contract (mm): the file system exports through DmaBufOps");
    }

    @Test
    void theBlockDevicesDoNotNameTheFilesystem() throws IOException {
        assertEquals(List.of(), mentions(MAIN.resolve("block"), FS), "the filesystem calls the block devices, never the other way");
    }

    @Test
    void onlyTheCommandsTestsNameTheCommand() throws IOException {
        List<String> found = new ArrayList<>();
        for (Path dir : packages(TEST)) {
            if (!dir.getFileName().toString().equals("cli")) found.addAll(mentions(dir, CLI));
        }
        assertEquals(List.of(), found, "a test of a lower layer goes through the command");
    }

    /** The package directories directly under root (each with its subpackages). */
    private static List<Path> packages(Path root) throws IOException {
        assertTrue(Files.isDirectory(root), root.toAbsolutePath() + ": run from the project's directory");
        try (Stream<Path> s = Files.list(root)) {
            List<Path> dirs = s.filter(Files::isDirectory).sorted().toList();
            assertTrue(dirs.size() > 3, "packages under " + root + ": " + dirs);
            return dirs;
        }
    }

    /** "file:line: text" for every line of a .java file under dir that matches pattern. */
    private static List<String> mentions(Path dir, Pattern pattern) throws IOException {
        List<String> out = new ArrayList<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path f : s.filter(p -> p.toString().endsWith(".java")).sorted().toList()) {
                List<String> lines = Files.readAllLines(f);
                for (int i = 0; i < lines.size(); i++) {
                    Matcher m = pattern.matcher(lines.get(i));
                    if (m.find()) out.add(f + ":" + (i + 1) + ": " + lines.get(i).strip());
                }
            }
        }
        return out;
    }
}
