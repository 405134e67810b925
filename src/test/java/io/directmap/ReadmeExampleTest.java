package io.directmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.lang.Xorshift;
import io.directmap.sys.Process;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's library example cannot go stale: the first java block of "Use it as a library" is
 * the consumer project's main (examples/consumer), it compiles against the library alone, and run
 * in a JVM of its own, as a user runs it, it reads a file this test writes and prints its size and a
 * CRC32C of device memory equal to the file's. As root it runs a second time as nobody (uid 65534),
 * where every byte falls back, to show the README's claim that it works as any user.
 */
class ReadmeExampleTest {
    static final Path README = Path.of("README.md");
    static final Path CONSUMER = Path.of("examples/consumer/src/main/java/io/directmap/example/ReadAFile.java");
    static final String MAIN = "io.directmap.example.ReadAFile";
    static final int SIZE = 3 * (1 << 20) + 123;

    @TempDir Path dir;

    /** The first ```java block of the README's "Use it as a library" section. */
    static String example() throws IOException {
        String readme = Files.readString(README);
        int section = readme.indexOf("\n## Use it as a library\n");
        assertTrue(section >= 0, README.toAbsolutePath() + " has no section \"## Use it as a library\"");
        int next = readme.indexOf("\n## ", section + 1);
        String body = readme.substring(section, next < 0 ? readme.length() : next);
        Matcher m = Pattern.compile("```java\n(.*?)```", Pattern.DOTALL).matcher(body);
        assertTrue(m.find(), "\"Use it as a library\" has no ```java block");
        return m.group(1);
    }

    @Test
    void theReadmeExampleIsTheConsumersMain() throws IOException {
        assertEquals(Files.readString(CONSUMER), example(),
                "the README's example and " + CONSUMER + " differ: change both (the consumer project builds the README's program)");
    }

    @Test
    void theReadmeExampleCompilesAndReadsTheFile() throws Exception {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path classes = compile(example());
        byte[] content = new byte[SIZE];
        Xorshift.seeded(3).fill(content);
        Path file = dir.resolve("data.bin");
        Files.write(file, content);
        CRC32C crc = new CRC32C();
        crc.update(content);
        String fileCrc = String.format(Locale.ROOT, "%08x", crc.getValue());

        List<String> asUser = new ArrayList<>();
        checkOutput(run(classes, file, List.of()), file, fileCrc, false);
        if (Process.isRoot() && Files.isExecutable(Path.of("/usr/bin/setpriv"))) {
            asUser.addAll(List.of("/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"));
            checkOutput(run(classes, file, asUser), file, fileCrc, true);
        }
    }

    /** What a user checks: the size, how the bytes came (adding up), and the checksum of device memory. */
    private static void checkOutput(String out, Path file, String fileCrc, boolean notRoot) {
        Matcher m = Pattern.compile("read (\\d+) bytes of (\\S+) into gpu0: (\\d+) direct, (\\d+) through the page cache").matcher(out);
        assertTrue(m.find(), "the example says what it read:\n" + out);
        assertEquals(SIZE, Long.parseLong(m.group(1)), out);
        assertEquals(file.toString(), m.group(2), out);
        assertEquals(SIZE, Long.parseLong(m.group(3)) + Long.parseLong(m.group(4)), "every byte went one way or the other:\n" + out);
        if (notRoot) assertEquals(0, Long.parseLong(m.group(3)), "as nobody, the block device cannot be opened:\n" + out);
        assertTrue(out.contains("  [0, "), "it lists the parts:\n" + out);
        assertTrue(out.contains("crc32c " + fileCrc + "\n"), "device memory holds the file's bytes (crc32c " + fileCrc + "):\n" + out);
    }

    /** javac, as a user's build runs it: the example against the library's classes alone. */
    private Path compile(String source) throws IOException {
        Path src = dir.resolve("src/io/directmap/example/ReadAFile.java");
        Files.createDirectories(src.getParent());
        Files.writeString(src, source);
        Path out = Files.createDirectories(dir.resolve("classes"));
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertNotNull(javac, "this JVM has no javac (run the tests with a JDK)");
        DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
        try (StandardJavaFileManager files = javac.getStandardFileManager(diagnostics, Locale.ROOT, StandardCharsets.UTF_8)) {
            List<String> options = List.of("-d", out.toString(), "-classpath", library().toString(), "-Xlint:all", "-Werror");
            boolean ok = javac.getTask(null, files, diagnostics, options, null, files.getJavaFileObjects(src)).call();
            assertTrue(ok, "the README's example does not compile against the library:\n" + diagnostics.getDiagnostics());
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.filter(Files::isDirectory).toList()) Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
        }
        return out;
    }

    /** Where the library's classes are (target/classes under Maven). */
    private static Path library() {
        try {
            return Path.of(DirectMap.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (java.net.URISyntaxException e) {
            throw new AssertionError(e);
        }
    }

    /** Runs the example in a JVM of its own (prefix: how to run it as another user), and returns what it printed. */
    private String run(Path classes, Path file, List<String> prefix) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(prefix);
        command.addAll(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", classes + java.io.File.pathSeparator + library(), MAIN, file.toString()));
        Path output = dir.resolve("output-" + prefix.size() + ".txt");
        java.lang.Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(output.toFile()).start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            throw new AssertionError(String.join(" ", command) + " ran over 120 s:\n" + Files.readString(output));
        }
        String out = Files.readString(output);
        assertEquals(0, p.exitValue(), String.join(" ", command) + " failed:\n" + out);
        assertTrue(!out.contains("WARNING"), "the example runs without warnings:\n" + out);
        return out;
    }
}
