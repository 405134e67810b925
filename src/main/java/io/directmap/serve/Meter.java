package io.directmap.serve;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/**
 * What the server has done, counted without locks on the hot path, and the one line a second that
 * {@code dmap serve} prints:
 *
 * <pre>
 * 12:00:01  requests 120/s  0.95 GiB/s  direct 82.1%  sendfile 10.2%  copied 7.7%  page cache +4.0 MiB  connections 8  cut 0
 * </pre>
 *
 * direct: body bytes read from the block device with O_DIRECT into NIC memory; sendfile: sent from
 * the page cache with sendfile; copied: copied from the page cache into NIC memory; page cache: how
 * much the page cache of this process's cgroup (or, outside one, the machine's) has grown since the
 * server started; cut: responses cut off because their file changed, or reset because they held a
 * change back too long.
 */
final class Meter {
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss");

    final LongAdder requests = new LongAdder();
    final LongAdder bodyBytes = new LongAdder();
    final LongAdder directBytes = new LongAdder();
    final LongAdder sendfileBytes = new LongAdder();
    final LongAdder copiedBytes = new LongAdder();
    final LongAdder cut = new LongAdder();
    final AtomicInteger connections = new AtomicInteger();
    final AtomicInteger refusedConnections = new AtomicInteger();
    private final long cacheAtStart = pageCacheBytes();
    private long lastRequests, lastBytes, lastDirect, lastSendfile, lastCopied, lastNanos = System.nanoTime();

    /** The line for the second since the last call. */
    synchronized String line() {
        long now = System.nanoTime();
        double seconds = Math.max(1e-9, (now - lastNanos) / 1e9);
        long req = requests.sum(), bytes = bodyBytes.sum(), direct = directBytes.sum(), sf = sendfileBytes.sum(), cp = copiedBytes.sum();
        long dDirect = direct - lastDirect, dSendfile = sf - lastSendfile, dCopied = cp - lastCopied;
        long moved = Math.max(1, dDirect + dSendfile + dCopied);
        String s = String.format("%s  requests %d/s  %.2f GiB/s  direct %.1f%%  sendfile %.1f%%  copied %.1f%%  page cache %s  connections %d  cut %d",
                LocalTime.now().format(TIME), Math.round((req - lastRequests) / seconds), (bytes - lastBytes) / seconds / (1L << 30),
                100.0 * dDirect / moved, 100.0 * dSendfile / moved, 100.0 * dCopied / moved, signedBytes(pageCacheBytes() - cacheAtStart),
                connections.get(), cut.sum());
        lastRequests = req;
        lastBytes = bytes;
        lastDirect = direct;
        lastSendfile = sf;
        lastCopied = cp;
        lastNanos = now;
        return s;
    }

    /** The page cache of this process's cgroup (memory.stat "file"), or the machine's (/proc/meminfo Cached). */
    static long pageCacheBytes() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/cgroup"))) {
                if (!l.startsWith("0::")) continue;
                Path stat = Path.of("/sys/fs/cgroup" + l.substring(3), "memory.stat");
                if (!Files.isReadable(stat) || l.substring(3).equals("/")) break;
                for (String s : Files.readAllLines(stat)) {
                    if (s.startsWith("file ")) return Long.parseLong(s.substring(5).strip());
                }
            }
        } catch (IOException | RuntimeException e) {
            // no cgroup v2: the machine's figure below
        }
        try {
            for (String l : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (l.startsWith("Cached:")) return Long.parseLong(l.replaceAll("\\D", "")) * 1024;
            }
        } catch (IOException | RuntimeException e) {
            // unreadable: say 0
        }
        return 0;
    }

    private static String signedBytes(long b) {
        String sign = b < 0 ? "-" : "+";
        double a = Math.abs((double) b);
        if (a >= 1L << 30) return String.format("%s%.1f GiB", sign, a / (1L << 30));
        if (a >= 1L << 20) return String.format("%s%.1f MiB", sign, a / (1L << 20));
        if (a >= 1L << 10) return String.format("%s%.1f KiB", sign, a / (1L << 10));
        return sign + (long) a + " B";
    }
}
