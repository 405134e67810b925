package io.directmap.bench;

import io.directmap.fs.ChangeWatch;
import io.directmap.fs.OpenFile;
import io.directmap.sys.TaskSyscall.Access;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * What a watched file costs its writer: times {@code dd bs=4k count=N conv=notrunc} into a
 * watched file and into an unwatched one, alternating, and prints min/median/max of each.
 * Not a test (timings are never asserted). Run as root:
 * {@code java --enable-native-access=ALL-UNNAMED -cp target/classes:target/test-classes
 * io.directmap.bench.WriteCostBench [dir] [rounds] [count] [asked|uninterested]}: with
 * "uninterested" the listener says no change matters to it (the reader answers at once).
 */
public final class WriteCostBench {
    private WriteCostBench() {}

    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory(Path.of(args.length > 0 ? args[0] : "/var/tmp"), "dmap-bench-");
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 15;
        int count = args.length > 2 ? Integer.parseInt(args[2]) : 65;
        Path watched = dir.resolve("watched"), plain = dir.resolve("plain");
        byte[] data = new byte[count * 4096];
        Files.write(watched, data);
        Files.write(plain, data);
        boolean uninterested = args.length > 3 && args[3].equals("uninterested");
        ChangeWatch.Listener allow = new ChangeWatch.Listener() {
            @Override public boolean interested(long start, long end) { return !uninterested; }
            @Override public ChangeWatch.Verdict opening(ChangeWatch.Task t, Access.Open a) { return ChangeWatch.Verdict.ALLOW; }
            @Override public ChangeWatch.Verdict changing(ChangeWatch.Task t, ChangeWatch.Change c) { return ChangeWatch.Verdict.ALLOW; }
            @Override public void writerClosed(ChangeWatch.Task t) {}
        };
        try (ChangeWatch cw = ChangeWatch.open(); OpenFile f = OpenFile.open(watched)) {
            if (!cw.available()) throw new IllegalStateException(cw.why());
            if (!(cw.watch(f, allow) instanceof ChangeWatch.Watch w)) throw new IllegalStateException("refused");
            try (w) {
                long[] on = new long[rounds], off = new long[rounds];
                for (int i = -2; i < rounds; i++) {          // two warm-up rounds
                    long a = dd(watched, count), b = dd(plain, count);
                    if (i >= 0) { on[i] = a; off[i] = b; }
                }
                System.out.println("dd bs=4k count=" + count + " conv=notrunc, " + rounds + " rounds, listener "
                        + (uninterested ? "uninterested" : "asked") + "; asked=" + cw.asked()
                        + " answeredAtOnce=" + cw.answeredAtOnce());
                System.out.println("watched   " + stats(on));
                System.out.println("unwatched " + stats(off));
            }
        } finally {
            Files.deleteIfExists(watched);
            Files.deleteIfExists(plain);
            Files.deleteIfExists(dir);
        }
    }

    private static long dd(Path p, int count) throws Exception {
        long t0 = System.nanoTime();
        Process pr = new ProcessBuilder(List.of("dd", "if=/dev/zero", "of=" + p, "bs=4k", "count=" + count,
                "conv=notrunc", "status=none")).inheritIO().start();
        if (pr.waitFor() != 0) throw new IllegalStateException("dd failed");
        return System.nanoTime() - t0;
    }

    private static String stats(long[] ns) {
        long[] s = ns.clone();
        Arrays.sort(s);
        return String.format("min %.1f ms  median %.1f ms  max %.1f ms", s[0] / 1e6, s[s.length / 2] / 1e6, s[s.length - 1] / 1e6);
    }
}
