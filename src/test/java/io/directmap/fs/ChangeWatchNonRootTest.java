package io.directmap.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.directmap.testing.ScratchFs;
import io.directmap.tools.Commands;
import io.directmap.tools.ScratchFilesystem;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An unprivileged user (nobody, through setpriv) gets a change watch that is not available and
 * says to run as root, instead of an exception.
 */
class ChangeWatchNonRootTest {
    @TempDir Path dir;

    @Test
    void anUnprivilegedUserIsToldToRunAsRoot() throws Exception {
        ScratchFs.requireRootFixtures(ScratchFilesystem.Type.EXT4);    // root, to become nobody
        Path cp = Files.createDirectories(dir.resolve("cp"));
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path classes = Path.of(ChangeWatch.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        Path testClasses = Path.of(ChangeWatchChild.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        Commands.run("cp", "-r", classes.toString(), cp.resolve("classes").toString());
        Commands.run("cp", "-r", testClasses.toString(), cp.resolve("test-classes").toString());
        Commands.run("chmod", "-R", "a+rX", cp.toString());
        String out = Commands.run(List.of("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", cp.resolve("classes") + ":" + cp.resolve("test-classes"), ChangeWatchChild.class.getName(), "--available"));
        assertEquals("false: fanotify permission events need root (CAP_SYS_ADMIN): run as root", out.trim());
    }
}
