package io.directmap.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.directmap.device.Profile;
import io.directmap.device.SoftwareDevice;
import io.directmap.fs.FsStack;
import io.directmap.fs.Policy;
import io.directmap.pci.Topology;
import io.directmap.testing.ScratchFs;
import io.directmap.tools.ScratchFilesystem;
import io.directmap.tools.Workloads;
import java.io.IOException;
import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * dmap serve against a java.net.http client (and, where that client would tidy the request up or
 * hide a short body, a raw socket), on a loop-mounted ext4: every body compared byte for byte with
 * the file. The policy is the fixed one (cold ranges direct, cached ones through the page cache),
 * so which path a window takes is known; the rewrite test runs the learning one.
 */
class FileServerTest {
    static final long MiB = 1 << 20;

    @RegisterExtension
    static final ScratchFs EXT4 = new ScratchFs(ScratchFilesystem.Type.EXT4);

    static Path www, accessLog;
    static FsStack stack;
    static SoftwareDevice nic;
    static FileServer server;
    static HttpClient client;
    static String base;

    @BeforeAll
    static void start() throws Exception {
        www = EXT4.file("www");
        Files.createDirectories(www.resolve("sub"));
        Workloads.write(www.resolve("cold.bin"), 0, 6 * MiB + 12345, 1);
        Workloads.syncAndEvict(www.resolve("cold.bin"));
        Workloads.write(www.resolve("hot.bin"), 0, 3 * MiB, 2);
        Files.readAllBytes(www.resolve("hot.bin"));
        Files.writeString(www.resolve("small.txt"), "hello, world\n");
        Files.write(www.resolve("empty.bin"), new byte[0]);
        Workloads.write(www.resolve("sub/inner.bin"), 0, 100_000, 3);
        Files.writeString(EXT4.file("secret.txt"), "outside the served directory\n");
        Files.createSymbolicLink(www.resolve("inside-link"), Path.of("sub/inner.bin"));
        Files.createSymbolicLink(www.resolve("out-abs"), EXT4.file("secret.txt"));
        Files.createSymbolicLink(www.resolve("out-rel"), Path.of("../secret.txt"));
        run("mkfifo", www.resolve("fifo").toString());
        run("mknod", www.resolve("null").toString(), "c", "1", "3");
        accessLog = EXT4.file("access.log");
        stack = FsStack.open(Topology.defaults(), new Policy(Policy.CachedPages.REFUSE).withRangeEvents(false));
        nic = SoftwareDevice.create("nic0", Profile.NIC, 256 * MiB, stack.topology());
        ServeOptions o = ServeOptions.defaults(www).listen(InetAddress.getLoopbackAddress(), 0).sendfile(ServeOptions.Sendfile.ALWAYS)
                .limits(256 << 10, 64, Duration.ofSeconds(2), Duration.ofSeconds(10), Duration.ofSeconds(60));
        server = FileServer.start(o, stack.space(), nic, accessLog);
        client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        base = "http://127.0.0.1:" + server.port();
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            if (client != null) client.close();
            if (server != null) server.close();
        } finally {
            if (nic != null) nic.close();
            if (stack != null) stack.close();
        }
    }

    private static void run(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS) && p.exitValue() == 0, String.join(" ", command) + ": " + out);
    }

    private static HttpResponse<byte[]> get(String path, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(20));
        for (int i = 0; i < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
        return client.send(b.GET().build(), HttpResponse.BodyHandlers.ofByteArray());
    }

    private static byte[] file(String name, long start, long end) throws IOException {
        byte[] all = Files.readAllBytes(www.resolve(name));
        return Arrays.copyOfRange(all, (int) start, (int) end);
    }

    @Test
    void wholeFilesAreTheFilesBytesDirectFromTheDeviceWhenCold() throws Exception {
        long directBefore = server.meter().directBytes.sum();
        for (String name : List.of("cold.bin", "hot.bin", "small.txt", "sub/inner.bin", "hot.bin")) {
            HttpResponse<byte[]> r = get("/" + name);
            assertEquals(200, r.statusCode(), name);
            byte[] expected = Files.readAllBytes(www.resolve(name));
            assertArrayEquals(expected, r.body(), name);
            assertEquals(Long.toString(expected.length), r.headers().firstValue("content-length").orElseThrow());
            assertEquals("bytes", r.headers().firstValue("accept-ranges").orElseThrow());
        }
        assertTrue(server.meter().directBytes.sum() - directBefore >= 6 * MiB,
                "the cold file went direct (O_DIRECT into NIC memory): " + server.statsLine());
        assertTrue(server.meter().sendfileBytes.sum() > 0, "the hot file, mapped through the page cache, went with sendfile: "
                + server.statsLine());
        assertEquals("text/plain", get("/small.txt").headers().firstValue("content-type").orElseThrow());
        HttpResponse<byte[]> empty = get("/empty.bin");
        assertEquals(200, empty.statusCode());
        assertEquals(0, empty.body().length);
    }

    @Test
    void singleRangesAreThoseBytes() throws Exception {
        long size = Files.size(www.resolve("cold.bin"));
        record Case(String header, long start, long end) {}
        for (Case c : List.of(new Case("bytes=0-0", 0, 1), new Case("bytes=100-299", 100, 300),
                new Case("bytes=262140-262150", 262140, 262151), new Case("bytes=6000000-", 6000000, size),
                new Case("bytes=-5000", size - 5000, size), new Case("bytes=1048570-99999999", 1048570, size),
                new Case("bytes=4095-1052672", 4095, 1052673))) {
            HttpResponse<byte[]> r = get("/cold.bin", "Range", c.header());
            assertEquals(206, r.statusCode(), c.header());
            assertEquals("bytes " + c.start() + "-" + (c.end() - 1) + "/" + size, r.headers().firstValue("content-range").orElseThrow());
            assertArrayEquals(file("cold.bin", c.start(), c.end()), r.body(), c.header());
        }
    }

    @Test
    void multipleRangesComeAsMultipartByteranges() throws Exception {
        long size = Files.size(www.resolve("hot.bin"));
        HttpResponse<byte[]> r = get("/hot.bin", "Range", "bytes=0-9, 300000-300099,-10");
        assertEquals(206, r.statusCode());
        String type = r.headers().firstValue("content-type").orElseThrow();
        assertTrue(type.startsWith("multipart/byteranges; boundary="), type);
        String boundary = type.substring(type.indexOf('=') + 1);
        String body = new String(r.body(), StandardCharsets.ISO_8859_1);
        Matcher m = Pattern.compile("--" + Pattern.quote(boundary) + "\r\nContent-Type: [^\r]+\r\nContent-Range: bytes (\\d+)-(\\d+)/(\\d+)\r\n\r\n")
                .matcher(body);
        long[][] want = {{0, 10}, {300000, 300100}, {size - 10, size}};
        for (long[] w : want) {
            assertTrue(m.find(), "a part for " + w[0] + "-" + (w[1] - 1) + " in " + body.length() + " bytes");
            assertEquals(w[0], Long.parseLong(m.group(1)));
            assertEquals(w[1] - 1, Long.parseLong(m.group(2)));
            assertEquals(size, Long.parseLong(m.group(3)));
            byte[] part = Arrays.copyOfRange(r.body(), m.end(), m.end() + (int) (w[1] - w[0]));
            assertArrayEquals(file("hot.bin", w[0], w[1]), part);
        }
        assertTrue(body.endsWith("\r\n--" + boundary + "--\r\n"), "the closing boundary");
    }

    @Test
    void headSaysWhatGetWouldSend() throws Exception {
        HttpResponse<Void> h = client.send(HttpRequest.newBuilder(URI.create(base + "/cold.bin")).method("HEAD", HttpRequest.BodyPublishers.noBody())
                .build(), HttpResponse.BodyHandlers.discarding());
        assertEquals(200, h.statusCode());
        assertEquals(Long.toString(Files.size(www.resolve("cold.bin"))), h.headers().firstValue("content-length").orElseThrow());
        assertEquals(get("/cold.bin", "Range", "bytes=0-0").headers().firstValue("etag"), h.headers().firstValue("etag"));
        try (RawHttp raw = new RawHttp(server.port())) {
            RawHttp.Response r = raw.request("HEAD", "/small.txt");
            assertEquals(200, r.status());
            assertEquals(0, r.body().length);
            assertEquals("hello", new String(raw.request("GET", "/small.txt").body(), StandardCharsets.US_ASCII).substring(0, 5),
                    "no body came after the HEAD: the next response is read from its own first byte");
        }
    }

    @Test
    void conditionalRequests() throws Exception {
        HttpResponse<byte[]> first = get("/small.txt");
        String etag = first.headers().firstValue("etag").orElseThrow();
        String modified = first.headers().firstValue("last-modified").orElseThrow();
        assertNotNull(etag);
        assertEquals(304, get("/small.txt", "If-None-Match", etag).statusCode());
        assertEquals(304, get("/small.txt", "If-None-Match", "\"nope\", W/" + etag).statusCode());
        assertEquals(304, get("/small.txt", "If-Modified-Since", modified).statusCode());
        assertEquals(200, get("/small.txt", "If-None-Match", "\"nope\"").statusCode());
        assertEquals(200, get("/small.txt", "If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT").statusCode());
        HttpResponse<byte[]> range = get("/small.txt", "Range", "bytes=0-4", "If-Range", etag);
        assertEquals(206, range.statusCode());
        assertEquals("hello", new String(range.body(), StandardCharsets.US_ASCII));
        HttpResponse<byte[]> stale = get("/small.txt", "Range", "bytes=0-4", "If-Range", "\"another version\"");
        assertEquals(200, stale.statusCode());
        assertEquals("hello, world\n", new String(stale.body(), StandardCharsets.US_ASCII));
        assertEquals(412, get("/small.txt", "If-Match", "\"another version\"").statusCode());
        assertEquals(200, get("/small.txt", "If-Match", etag).statusCode());
    }

    @Test
    void statusCodesForWhatIsNotServed() throws Exception {
        assertEquals(404, get("/no-such-file").statusCode());
        long size = Files.size(www.resolve("cold.bin"));
        HttpResponse<byte[]> past = get("/cold.bin", "Range", "bytes=" + size + "-");
        assertEquals(416, past.statusCode());
        assertEquals("bytes */" + size, past.headers().firstValue("content-range").orElseThrow());
        assertEquals(416, get("/empty.bin", "Range", "bytes=0-").statusCode());
        assertEquals(200, get("/cold.bin", "Range", "bytes=9-5").statusCode(), "an invalid Range header is ignored");
        for (String method : List.of("POST", "PUT", "DELETE")) {
            HttpResponse<byte[]> r = client.send(HttpRequest.newBuilder(URI.create(base + "/small.txt"))
                    .method(method, HttpRequest.BodyPublishers.ofString("x")).build(), HttpResponse.BodyHandlers.ofByteArray());
            assertEquals(405, r.statusCode(), method);
            assertEquals("GET, HEAD", r.headers().firstValue("allow").orElseThrow());
        }
    }

    @Test
    void nothingOutsideTheDirectoryNorAnythingButRegularFiles() throws Exception {
        try (RawHttp raw = new RawHttp(server.port())) {
            for (String escape : List.of("/../secret.txt", "/%2e%2e/secret.txt", "/sub/../../secret.txt", "/out-abs", "/out-rel",
                    "/sub/%2E%2E/%2E%2E/secret.txt", "//../secret.txt")) {
                RawHttp.Response r = raw.request("GET", escape);
                assertEquals(404, r.status(), escape);
                assertTrue(!new String(r.body(), StandardCharsets.UTF_8).contains("outside the served"), escape);
            }
            for (String other : List.of("/fifo", "/null", "/", "/sub")) assertEquals(403, raw.request("GET", other).status(), other);
            RawHttp.Response in = raw.request("GET", "/inside-link");
            assertEquals(200, in.status(), "a symlink that stays inside is followed");
            assertArrayEquals(Files.readAllBytes(www.resolve("sub/inner.bin")), in.body());
        }
    }

    @Test
    void aBadRequestGets400AndTheServerGoesOn() throws Exception {
        try (RawHttp raw = new RawHttp(server.port())) {
            raw.send("THIS IS NOT HTTP\r\n\r\n");
            assertEquals(400, raw.read(false).status());
            assertTrue(raw.closedByServer(), "that connection ends");
        }
        try (RawHttp raw = new RawHttp(server.port())) {
            assertEquals(400, raw.request("GET", "/small.txt", "X-Long: " + "a".repeat(20_000)).status());
        }
        try (RawHttp raw = new RawHttp(server.port())) {
            // Two requests in one write (pipelined): answered in order on the same connection.
            raw.send("GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /sub/inner.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\n\r\n");
            assertEquals("hello, world\n", new String(raw.read(false).body(), StandardCharsets.US_ASCII));
            RawHttp.Response second = raw.read(false);
            assertEquals(206, second.status());
            assertArrayEquals(file("sub/inner.bin", 10, 20), second.body());
        }
        assertEquals(200, get("/small.txt").statusCode());
    }

    @Test
    void connectionsBeyondTheLimitGet503() throws Exception {
        ServeOptions o = ServeOptions.defaults(www).listen(InetAddress.getLoopbackAddress(), 0)
                .limits(64 << 10, 1, Duration.ofSeconds(2), Duration.ofSeconds(10), Duration.ofSeconds(60));
        try (FileServer one = FileServer.start(o, stack.space(), nic, null)) {
            try (RawHttp a = new RawHttp(one.port())) {
                assertEquals(200, a.request("GET", "/small.txt").status());
                try (RawHttp b = new RawHttp(one.port())) {
                    assertEquals(503, b.read(false).status());
                }
                assertEquals(200, a.request("GET", "/small.txt").status(), "the first connection is served still");
            }
            // The count goes down when the server sees the close: try again for a bounded time.
            long deadline = System.nanoTime() + 10_000_000_000L;
            int status;
            do {
                try (RawHttp c = new RawHttp(one.port())) {
                    c.send("GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n");
                    status = c.read(false).status();
                }
            } while (status == 503 && System.nanoTime() < deadline);
            assertEquals(200, status);
        }
    }

    @Test
    void theAccessLogHasACommonLogFormatLinePerRequest() throws Exception {
        get("/small.txt");
        get("/no-such-file");
        // A line is written once its response has gone out, so after the client has it: wait for it, bounded.
        long deadline = System.nanoTime() + 10_000_000_000L;
        List<String> lines = Files.readAllLines(accessLog);
        while (lines.stream().noneMatch(l -> l.contains("/no-such-file HTTP/1.1\" 404")) && System.nanoTime() < deadline) {
            Thread.sleep(10);
            lines = Files.readAllLines(accessLog);
        }
        Pattern clf = Pattern.compile("^127\\.0\\.0\\.1 - - \\[\\d{2}/\\w{3}/\\d{4}:\\d{2}:\\d{2}:\\d{2} [+-]\\d{4}] \"GET (\\S+) HTTP/1\\.1\" (\\d{3}) (\\d+|-)$");
        assertTrue(lines.stream().anyMatch(l -> l.matches(clf.pattern()) && l.contains("/small.txt HTTP/1.1\" 200 13")), String.join("\n", lines));
        assertTrue(lines.stream().anyMatch(l -> l.matches(clf.pattern()) && l.contains("/no-such-file HTTP/1.1\" 404 -")), String.join("\n", lines));
    }
}
