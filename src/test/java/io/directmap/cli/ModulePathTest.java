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
        List<String> jars = new java.util.ArrayList<>(List.of(path(Dmap.class), path(picocli.CommandLine.class),
                path(com.google.gson.Gson.class)));
        for (Class<?> c : List.of(io.netty.handler.codec.http.HttpServerCodec.class, io.netty.handler.codec.ByteToMessageDecoder.class,
                io.netty.handler.timeout.IdleStateHandler.class, io.netty.channel.Channel.class, io.netty.buffer.ByteBuf.class,
                io.netty.util.ReferenceCounted.class, io.netty.channel.epoll.Epoll.class, io.netty.channel.unix.UnixChannel.class,
                io.netty.resolver.AddressResolver.class)) {
            jars.add(path(c));   // dmap serve's HTTP codec and transport, each a named module
        }
        String modulePath = String.join(File.pathSeparator, jars);
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        // --help builds every subcommand, so picocli reflects on every command's options.
        Process p = new ProcessBuilder(List.of(java.toString(), "--enable-native-access=io.directmap", "--module-path", modulePath,
                "-m", "io.directmap/io.directmap.cli.Dmap", "--help")).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "java did not exit");
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("Usage: dmap") && out.contains("bench") && out.contains("serve") && !out.contains("WARNING"), out);
    }
}
