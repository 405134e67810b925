package io.directmap.cli;

import io.directmap.device.Profile;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.PathLearner;
import io.directmap.fs.Policy;
import io.directmap.mm.InvalidRequestException;
import io.directmap.serve.FileServer;
import io.directmap.serve.ServeOptions;
import io.directmap.sys.Units;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "serve", description = {
        "Serve the files under DIR over HTTP/1.1 (GET, HEAD, ranges, ETag, conditional requests) through a NIC importer:",
        "each window of a response is mapped through device_map; direct windows are read with O_DIRECT into the NIC's",
        "memory and sent from there, page-cache windows are copied or sent with sendfile. A response never mixes two",
        "versions of a file: a change waits for the window being sent, and the response is cut off. Ctrl-C to stop."})
final class ServeCommand implements Callable<Integer> {
    @Spec picocli.CommandLine.Model.CommandSpec spec;

    @Parameters(paramLabel = "DIR", description = "The directory to serve; nothing outside it is served.")
    Path dir;

    @Option(names = "--port", defaultValue = "8080", description = "The port (default: ${DEFAULT-VALUE}); 0 picks a free one and prints it.")
    int port;

    @Option(names = "--bind", paramLabel = "ADDR", defaultValue = "0.0.0.0", description = "The address to listen on (default: ${DEFAULT-VALUE}).")
    String bind;

    @Option(names = "--device", paramLabel = "NAME", defaultValue = "nic0", description = "The NIC importer's name, nicN (default: ${DEFAULT-VALUE}).")
    String device;

    @Mixin Common.TopologyOption topology;

    // 4M: the DMA engine's requests reach 1 MiB each, 4 in flight (a 1 MiB window is 4 of 256 KiB).
    // Measured on a loaded 2-core VM the window made no difference we could tell from the noise.
    @Option(names = "--window", paramLabel = "SIZE", defaultValue = "4M",
            description = "The NIC reads and sends a response this much at a time; each connection holds two (default: ${DEFAULT-VALUE}).")
    Size window;

    // Two windows of NIC memory each: 120 x 2 x 4 MiB fits the NIC's 1 GiB.
    @Option(names = "--max-connections", paramLabel = "N", defaultValue = "120",
            description = "Connections beyond this get 503 (default: ${DEFAULT-VALUE}); each holds two windows of the NIC's 1 GiB.")
    int maxConnections;

    @Option(names = "--hold", paramLabel = "MS", defaultValue = "2000",
            description = "How long a change to a served file waits for a window being sent before that response is reset, in ms (default: ${DEFAULT-VALUE}).")
    long holdMillis;

    @Option(names = "--write-timeout", paramLabel = "SECONDS", defaultValue = "30",
            description = "A client that takes no bytes for this long is disconnected (default: ${DEFAULT-VALUE}).")
    long writeTimeout;

    @Option(names = "--sendfile", paramLabel = "auto|always|never", defaultValue = "auto",
            description = "Send page-cache windows with sendfile: auto (to peers on other hosts; loopback peers get a copy), always, never (default: ${DEFAULT-VALUE}).")
    String sendfile;

    // fixed by default: with learn, the learner's first sample of the direct path is a window's first
    // read, whose time includes its device_map fault (the block device opened, the extents read): it
    // learnt "direct 0.02 GiB/s" and sent the rest of a cold 512 MiB file through the page cache.
    @Option(names = "--policy", paramLabel = "fixed|learn", defaultValue = "fixed",
            description = "fixed: cold ranges direct, cached ones from the page cache; learn: measure both and send each range the faster way (default: ${DEFAULT-VALUE}).")
    Common.PolicyChoice policy;

    // 100 us, not bench's 1 us: a file server's page cache is its hot set, and a hot page pushed out is
    // read back later at random, one page at a time. With 1 us the learner, having timed the direct
    // path's small reads on a busy machine, sent a cold 256 MiB file through the cache (+256 MiB);
    // with 100 us, 96% of it went direct and the cache did not grow.
    @Option(names = "--evicted-page-cost", paramLabel = "NS", defaultValue = "100000",
            description = "With --policy learn: what one evicted page of hot cache costs, in nanoseconds; higher keeps cold files out of the cache (default: ${DEFAULT-VALUE}).")
    double evictedPageCost;

    @Option(names = "--access-log", paramLabel = "FILE", description = "Append a Common Log Format line for each request to FILE.")
    Path accessLog;

    @Option(names = "--quiet", description = "Do not print the line a second.")
    boolean quiet;

    @Option(names = "--for", paramLabel = "SECONDS", description = "Stop after this many seconds (default: until Ctrl-C or SIGTERM).")
    Double seconds;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        if (!Files.isDirectory(dir)) throw new InvalidRequestException(dir + " is not a directory; give the directory to serve");
        if (!device.matches("nic\\d+")) throw new InvalidRequestException("--device " + device + ": give a NIC, nicN (nic0)");
        ServeOptions.Sendfile mode = switch (sendfile) {
            case "auto" -> ServeOptions.Sendfile.AUTO;
            case "always" -> ServeOptions.Sendfile.ALWAYS;
            case "never" -> ServeOptions.Sendfile.NEVER;
            default -> throw new InvalidRequestException("--sendfile " + sendfile + ": give auto, always or never");
        };
        InetAddress address;
        try {
            address = InetAddress.getByName(bind);
        } catch (UnknownHostException e) {
            throw new InvalidRequestException("--bind " + bind + ": not an address (" + e.getMessage() + ")");
        }
        ServeOptions options;
        try {
            options = ServeOptions.defaults(dir.toAbsolutePath()).listen(address, port).sendfile(mode)
                    .limits(window.bytes(), maxConnections, Duration.ofMillis(holdMillis), Duration.ofSeconds(writeTimeout),
                            Duration.ofSeconds(60));
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(e.getMessage());
        }
        CountDownLatch stop = new CountDownLatch(1);
        CountDownLatch stopped = new CountDownLatch(1);
        // Ctrl-C and SIGTERM run the shutdown hooks: stop serving and let go of every mapping first.
        Thread hook = new Thread(() -> {
            stop.countDown();
            try {
                stopped.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "dmap-serve-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        // A served file hears of changes through a whole-file lease, not range events: a response must
        // never mix two versions, so any change to the file, wherever it lands, cuts the responses in
        // flight anyway (a range event tells only the windows it overlaps, and a write to a part not
        // yet mapped would reach none). And the server reads cached windows with pread on ordinary
        // descriptors, whose own access events would queue behind the change they wait for.
        Policy chosen = switch (policy) {
            case FIXED -> new Policy(Policy.CachedPages.REFUSE);
            case LEARN -> new Policy(Policy.CachedPages.REFUSE, new PathLearner(evictedPageCost));
        };
        Policy filePolicy = chosen.withRangeEvents(false);
        try (FsStack mm = FsStack.open(topology.load(), filePolicy);
             SoftwareDevice nic = SoftwareDevice.create(device, Profile.NIC, Profile.NIC.memoryBytes(), mm.topology());
             FileServer server = FileServer.start(options, mm.space(), nic, accessLog)) {
            out.printf("serving %s on http://%s:%d/ through %s (nic, %s of memory, %s windows, %s, policy %s, sendfile %s)%n",
                    dir.toAbsolutePath(), address.getHostAddress(), server.port(), device, Units.bytes(Profile.NIC.memoryBytes()),
                    Units.bytes(options.chunkBytes()), server.transport(), policy.name().toLowerCase(java.util.Locale.ROOT), sendfile);
            out.flush();
            long deadline = seconds == null ? Long.MAX_VALUE : System.nanoTime() + (long) (seconds * 1e9);
            server.statsLine();
            while (System.nanoTime() < deadline) {
                if (stop.await(1, TimeUnit.SECONDS)) break;
                if (!quiet) {
                    out.println(server.statsLine());
                    out.flush();
                }
            }
        } finally {
            stopped.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // shutting down: the hook is running, and waits for stopped
            }
        }
        out.println("stopped; every mapping let go");
        out.flush();
        return Dmap.OK;
    }
}
