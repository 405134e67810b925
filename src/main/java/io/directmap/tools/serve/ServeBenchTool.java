package io.directmap.tools.serve;

import com.google.gson.GsonBuilder;
import io.directmap.sys.Cachestat;
import io.directmap.sys.FileHandle;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The Java half of scripts/bench-serve, the parts a shell does badly: making the files, checking
 * that a server sends them byte for byte, the page-cache residency of a set of files (cachestat),
 * and the mixed-version count ({@link RewriteCheck}). Each subcommand prints one JSON object on
 * standard output and exits 0, or prints what failed on standard error and exits 1 (2 for bad
 * arguments). Started with {@code java -cp target/directmap.jar io.directmap.tools.serve.ServeBenchTool}.
 *
 * <pre>
 * files DIR LARGE_COUNT LARGE_BYTES HOT_COUNT HOT_BYTES REWRITE_BYTES
 *     DIR/large-N.bin, DIR/hot/hot-N.bin (seeded data), DIR/rewrite.bin (stamped version 0)
 * compare URL FILE              GET URL, compare the body with FILE byte for byte
 * cachestat FILE...             pages of the files in the page cache
 * rewrite URL FILE BYTES SECONDS READERS WRITE_EVERY_MS
 *                               the mixed-version count while FILE is rewritten
 * summary RESULTS.tsv [--json [RUN.tsv]]
 *                               the tables (or JSON, with RUN's key TAB value lines as "run") of the results
 * </pre>
 */
public final class ServeBenchTool {
    private ServeBenchTool() {}

    public static void main(String[] args) {
        int status;
        try {
            Map<String, Object> out = switch (args.length == 0 ? "" : args[0]) {
                case "files" -> files(args);
                case "compare" -> compare(args);
                case "cachestat" -> cachestat(args);
                case "rewrite" -> rewrite(args);
                case "summary" -> summary(args);
                default -> throw new IllegalArgumentException("usage: files|compare|cachestat|rewrite|summary ... (see the class comment)");
            };
            if (out != null) System.out.println(new GsonBuilder().serializeNulls().serializeSpecialFloatingPointValues()
                    .setPrettyPrinting().create().toJson(out));
            status = 0;
        } catch (IllegalArgumentException e) {
            System.err.println("serve-bench-tool: " + e.getMessage());
            status = 2;
        } catch (IOException | InterruptedException e) {
            System.err.println("serve-bench-tool " + String.join(" ", args) + ": " + e.getMessage());
            status = 1;
        }
        System.exit(status);
    }

    private static void need(String[] args, int n, String usage) {
        if (args.length != n) throw new IllegalArgumentException("usage: " + usage);
    }

    private static Map<String, Object> files(String[] args) throws IOException {
        need(args, 7, "files DIR LARGE_COUNT LARGE_BYTES HOT_COUNT HOT_BYTES REWRITE_BYTES");
        Path dir = Path.of(args[1]);
        int large = Integer.parseInt(args[2]), hot = Integer.parseInt(args[4]);
        long largeBytes = Long.parseLong(args[3]), hotBytes = Long.parseLong(args[5]), rewriteBytes = Long.parseLong(args[6]);
        Files.createDirectories(dir.resolve("hot"));
        for (int i = 0; i < large; i++) Workloads.write(dir.resolve("large-" + i + ".bin"), 0, largeBytes, 1000 + i);
        for (int i = 0; i < hot; i++) Workloads.write(dir.resolve("hot").resolve("hot-" + i + ".bin"), 0, hotBytes, 2000 + i);
        StampedBlocks.writeVersion(dir.resolve("rewrite.bin"), 0, rewriteBytes);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("dir", dir.toString());
        m.put("bytes", large * largeBytes + hot * hotBytes + rewriteBytes);
        return m;
    }

    private static Map<String, Object> compare(String[] args) throws IOException {
        need(args, 3, "compare URL FILE");
        URI url = URI.create(args[1]);
        Path file = Path.of(args[2]);
        HttpURLConnection c = (HttpURLConnection) url.toURL().openConnection();
        c.setConnectTimeout(5_000);
        c.setReadTimeout(60_000);
        if (c.getResponseCode() != 200) throw new IOException("GET " + url + " answered " + c.getResponseCode() + ", not 200");
        long same = 0;
        try (InputStream net = c.getInputStream(); InputStream disk = Files.newInputStream(file)) {
            byte[] a = new byte[1 << 16], b = new byte[1 << 16];
            for (int n; (n = net.readNBytes(a, 0, a.length)) > 0; same += n) {
                int m = disk.readNBytes(b, 0, n);
                if (m != n || !Arrays.equals(a, 0, n, b, 0, n)) {
                    throw new IOException("GET " + url + " differs from " + file + " in the 64 KiB at byte " + same
                            + (m != n ? " (the file ends at " + (same + m) + ")" : ""));
                }
            }
            if (disk.read() != -1) throw new IOException("GET " + url + " ended at byte " + same + ", before the end of " + file);
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("url", url.toString());
        m.put("bytesCompared", same);
        return m;
    }

    private static Map<String, Object> cachestat(String[] args) throws IOException {
        if (args.length < 2) throw new IllegalArgumentException("usage: cachestat FILE...");
        long cached = 0, bytes = 0;
        for (String name : List.of(args).subList(1, args.length)) {
            try (FileHandle f = FileHandle.openRead(Path.of(name))) {
                cached += Cachestat.query(f, 0, 0).cached();
                bytes += Files.size(Path.of(name));
            }
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("files", args.length - 1);
        m.put("bytes", bytes);
        m.put("cachedBytes", cached * 4096);
        return m;
    }

    private static Map<String, Object> summary(String[] args) throws IOException {
        if (args.length < 2 || args.length > 4 || (args.length > 2 && !args[2].equals("--json")))
            throw new IllegalArgumentException("usage: summary RESULTS.tsv [--json [RUN.tsv]]");
        Summary s = Summary.read(Path.of(args[1]));
        if (args.length > 2) {
            Map<String, String> run = new LinkedHashMap<>();
            if (args.length == 4) {
                for (String line : Files.readAllLines(Path.of(args[3]))) {
                    int tab = line.indexOf('\t');
                    if (tab > 0) run.put(line.substring(0, tab), line.substring(tab + 1));
                }
            }
            return s.json(run);
        }
        System.out.print(s.table());
        return null;
    }

    private static Map<String, Object> rewrite(String[] args) throws IOException, InterruptedException {
        need(args, 7, "rewrite URL FILE BYTES SECONDS READERS WRITE_EVERY_MS");
        RewriteCheck check = new RewriteCheck(URI.create(args[1]), Path.of(args[2]), Long.parseLong(args[3]),
                Integer.parseInt(args[5]), Long.parseLong(args[6]));
        return check.run(Long.parseLong(args[4]) * 1000);
    }
}
