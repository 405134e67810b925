package io.directmap.cli;

import io.directmap.tools.Commands;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Runs dmap as root on a machine where no block device can be opened, not even by root: in a
 * mount namespace of its own, /dev is remounted nodev, so every open of a device node under it
 * fails with EACCES (may_open_dev) while the files, the file systems and their mounts stay as they
 * are. The machine's own /dev is untouched: the namespace is private and dies with the process.
 * {@link #run} starts it (unshare --mount --propagation private); {@link #main} is the child.
 */
public final class NodevDmap {
    private NodevDmap() {}

    /** The child's standard output; throws with its exit status and standard error when it fails. */
    public static String run(String... dmapArgs) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("unshare", "--mount", "--propagation", "private", "--",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", String.join(":", codeSource(Dmap.class), codeSource(NodevDmap.class), codeSource(picocli.CommandLine.class)),
                NodevDmap.class.getName(), mountNamespace()));
        cmd.addAll(List.of(dmapArgs));
        return Commands.run(cmd);
    }

    /** In the child: refuses to touch /dev unless this process is in a mount namespace other than the parent's. */
    public static void main(String[] args) throws IOException {
        if (mountNamespace().equals(args[0])) {
            System.err.println("not in a mount namespace of its own (" + args[0] + "): /dev left alone");
            System.exit(Dmap.FAILED);
        }
        Commands.run("mount", "--bind", "/dev", "/dev");
        Commands.run("mount", "-o", "remount,bind,nodev", "/dev");
        String[] dmap = Arrays.copyOfRange(args, 1, args.length);
        System.exit(Dmap.run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), dmap));
    }

    private static String mountNamespace() throws IOException {
        return Files.readSymbolicLink(Path.of("/proc/self/ns/mnt")).toString();
    }

    private static String codeSource(Class<?> c) {
        try {
            return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
