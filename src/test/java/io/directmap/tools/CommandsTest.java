package io.directmap.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** Commands: a fixed PATH and environment, both pipes drained at once, a timeout over the whole run that kills the tree. */
class CommandsTest {
    @Test
    void aChildThatFillsStandardErrorDoesNotHang() {
        // 4 MiB on stderr, far past a pipe's 64 KiB, before anything on stdout: reading stdout to
        // its end first (as before) would wait for ever on a child blocked writing stderr.
        String out = assertTimeoutPreemptively(Duration.ofSeconds(30), () -> Commands.run(List.of("dd", "if=/dev/zero",
                "of=/dev/stderr", "bs=1M", "count=4", "status=none"), null, Duration.ofSeconds(20)));
        assertEquals("", out);
    }

    @Test
    void aHungCommandIsKilledWithItsChildrenAndNamed() throws Exception {
        String marker = "61." + ProcessHandle.current().pid(); // sleep's argument, to find it in /proc
        long start = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> Commands.run(List.of("timeout", "100", "sleep", marker),
                null, Duration.ofMillis(300)));
        assertTrue(System.nanoTime() - start < 10_000_000_000L, "gave up at the timeout, not at the end of the sleep");
        assertTrue(e.getMessage().contains("timeout 100 sleep " + marker) && e.getMessage().contains("did not finish in 300 ms"),
                "names the command and how long it ran: " + e.getMessage());
        assertTrue(e.getMessage().contains("and the 1 process it started"), "and the sleep below it: " + e.getMessage());
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (!running(marker).isEmpty() && System.nanoTime() < deadline) Thread.sleep(10);
        assertEquals(List.of(), running(marker), "neither timeout nor the sleep it started is left running");
    }

    @Test
    void theEnvironmentIsOnlyTheFixedPathAndTheCLocale() throws Exception {
        Set<String> env = Commands.run("env").lines().collect(Collectors.toSet());
        assertEquals(Set.of("PATH=" + Commands.PATH, "LC_ALL=C"), env);
    }

    @Test
    void programsAreFoundOnTheFixedPathOnly() {
        Path env = Commands.resolve("env").orElseThrow();
        assertTrue(List.of(Commands.PATH.split(":")).contains(env.getParent().toString()), env.toString());
        assertFalse(Commands.available("./env"), "a relative path would depend on the working directory");
        assertFalse(Commands.available("no-such-tool-" + ProcessHandle.current().pid()));
        IOException e = assertThrows(IOException.class, () -> Commands.run("no-such-tool-x"));
        assertTrue(e.getMessage().contains("no-such-tool-x") && e.getMessage().contains(Commands.PATH), e.getMessage());
    }

    @Test
    void standardInputIsFedAndAFailureQuotesStandardError() throws Exception {
        assertEquals("start=2048, type=83\n", Commands.run(List.of("cat"), "start=2048, type=83\n"));
        IOException e = assertThrows(IOException.class, () -> Commands.run("ls", "/no-such-dir-x"));
        assertTrue(e.getMessage().contains("ls /no-such-dir-x exited 2") && e.getMessage().contains("No such file"),
                e.getMessage());
    }

    /** Pids whose command line contains the argument. */
    private static List<String> running(String argument) throws IOException {
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            return procs.filter(p -> p.getFileName().toString().chars().allMatch(Character::isDigit)).filter(p -> {
                try {
                    return new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8).contains(argument);
                } catch (IOException gone) {
                    return false;
                }
            }).map(p -> p.getFileName().toString()).toList();
        }
    }
}
