package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The same file, mapped by an unprivileged user (nobody, through setpriv): direct mapping is
 * refused because the block device cannot be opened, and every byte still arrives by fallback.
 */
class NonRootTest {
    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    @TempDir Path dir;

    @Test
    void unprivilegedUserFallsBackWithTheReason() throws Exception {
        Path file = EXT4.file("shared.bin");
        Workloads.write(file, 0, 4 << 20, 100);
        Workloads.syncAndEvict(file);
        Commands.run("chown", "65534:65534", file.toString());
        for (Path p = EXT4.mountPoint(); p != null && !p.equals(Path.of("/tmp")); p = p.getParent()) {
            Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
        }
        // The child JVM runs as nobody: give it a copy of the classes and picocli it can read.
        Path cp = Files.createDirectories(dir.resolve("cp"));
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Commands.run("cp", "-r", Path.of(Dmap.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toString(),
                cp.resolve("classes").toString());
        Commands.run("cp", Path.of(picocli.CommandLine.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toString(),
                cp.resolve("picocli.jar").toString());
        Commands.run("chmod", "-R", "a+rX", cp.toString());
        List<String> cmd = new ArrayList<>(List.of("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", cp.resolve("classes") + ":" + cp.resolve("picocli.jar"), "io.directmap.cli.Dmap",
                "map", file.toString(), "--json"));
        String out = Commands.run(cmd);
        assertEquals(0, DmapCommandTest.number(out, "direct_bytes"), out);
        assertEquals(4 << 20, DmapCommandTest.number(out, "fallback_bytes"), out);
        assertTrue(out.contains("\"checksum_ok\": true"), out);
        assertTrue(out.contains("\"reason\": \"unreadable\"") && out.contains("EACCES"), "refused with the reason:\n" + out);
    }
}
