package io.directmap.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * dmap runs as a named module, not only from the class path: the descriptor requires what the
 * code uses and opens the commands to picocli (which sets their fields by reflection).
 */
class ModulePathTest {
    private static String path(Class<?> c) throws Exception {
        return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }

    @Test
    void dmapRunsFromTheModulePath() throws Exception {
        String modulePath = String.join(File.pathSeparator, path(Dmap.class), path(picocli.CommandLine.class),
                path(com.google.gson.Gson.class));
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        // --help builds every subcommand, so picocli reflects on every command's options.
        Process p = new ProcessBuilder(List.of(java.toString(), "--enable-native-access=io.directmap", "--module-path", modulePath,
                "-m", "io.directmap/io.directmap.cli.Dmap", "--help")).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "java did not exit");
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("Usage: dmap") && out.contains("bench") && !out.contains("WARNING"), out);
    }
}
