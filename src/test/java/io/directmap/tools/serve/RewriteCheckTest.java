package io.directmap.tools.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The mixed-version checker's logic: block by block, a body of one version is clean, one with
 * blocks of two versions is mixed, one with a block of no version is torn; a body that stops before
 * its Content-Length is counted as cut off, whatever it held; an ETag seen with two versions is a
 * conflict. The HTTP side runs against a canned server on a loopback socket that sends exactly the
 * bytes each test gives it.
 */
class RewriteCheckTest {
    static final int BLOCKS = 8, SIZE = BLOCKS * StampedBlocks.BLOCK;

    static byte[] body(long... versionPerBlock) {
        ByteBuffer b = ByteBuffer.allocate(versionPerBlock.length * StampedBlocks.BLOCK);
        for (int i = 0; i < versionPerBlock.length; i++) StampedBlocks.fill(b.position(i * StampedBlocks.BLOCK), versionPerBlock[i], i);
        return b.array();
    }

    @Test
    void oneVersionThroughoutIsClean() {
        byte[] b = body(7, 7, 7, 7, 7, 7, 7, 7);
        assertEquals(new BodyVerdict.Clean(7, SIZE, true), StampedBlocks.check(b, b.length, true));
    }

    @Test
    void blocksOfTwoVersionsAreMixedAtTheFirstBlockOfTheSecond() {
        byte[] b = body(3, 3, 3, 4, 4, 4, 4, 4);
        assertEquals(new BodyVerdict.Mixed(3, 4, 3, SIZE, true), StampedBlocks.check(b, b.length, true));
    }

    @Test
    void aBlockWithABytePatchedIsTornEvenWhenItsStampAgrees() {
        byte[] b = body(5, 5, 5, 5, 5, 5, 5, 5);
        b[2 * StampedBlocks.BLOCK + 1000] ^= 1;
        assertEquals(new BodyVerdict.Torn(2, SIZE, true), StampedBlocks.check(b, b.length, true));
        byte[] shifted = body(5, 5, 5, 5, 5, 5, 5, 5);
        System.arraycopy(body(5, 5).clone(), 0, shifted, 4 * StampedBlocks.BLOCK, StampedBlocks.BLOCK); // block 0 where 4 belongs
        assertInstanceOf(BodyVerdict.Torn.class, StampedBlocks.check(shifted, shifted.length, true));
    }

    @Test
    void aCutOffBodyIsCheckedAsFarAsItGoesAndSaysIncomplete() {
        byte[] b = body(2, 2, 2, 9, 9, 9, 9, 9);
        assertEquals(new BodyVerdict.Clean(2, 3 * 4096 + 20, false), StampedBlocks.check(b, 3 * 4096 + 20, false));
        assertEquals(new BodyVerdict.Mixed(2, 9, 3, 3 * 4096 + 500, false), StampedBlocks.check(b, 3 * 4096 + 500, false));
    }

    @Test
    void aWrittenVersionReadsBackClean(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("v.bin");
        StampedBlocks.writeVersion(f, 0, SIZE);
        StampedBlocks.writeVersion(f, 41, SIZE);
        byte[] b = Files.readAllBytes(f);
        assertEquals(new BodyVerdict.Clean(41, SIZE, true), StampedBlocks.check(b, b.length, true));
    }

    /** Answers each connection's request with the next canned response, then closes the connection. */
    static final class CannedServer implements AutoCloseable {
        final ServerSocket socket = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        final List<byte[]> responses;
        final AtomicInteger next = new AtomicInteger();
        final Thread thread;

        CannedServer(List<byte[]> responses) throws IOException {
            this.responses = responses;
            thread = Thread.ofPlatform().daemon().start(this::serve);
        }

        static byte[] response(byte[] body, int sendBytes, String etag) {
            byte[] head = ("HTTP/1.1 200 OK\r\nContent-Length: " + body.length + "\r\nETag: " + etag
                    + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
            byte[] r = new byte[head.length + sendBytes];
            System.arraycopy(head, 0, r, 0, head.length);
            System.arraycopy(body, 0, r, head.length, sendBytes);
            return r;
        }

        URI url() { return URI.create("http://127.0.0.1:" + socket.getLocalPort() + "/rewrite.bin"); }

        private void serve() {
            while (!socket.isClosed()) {
                try (Socket s = socket.accept()) {
                    InputStream in = s.getInputStream();
                    for (int state = 0; state < 4; ) { // up to the blank line that ends the request
                        int c = in.read();
                        if (c < 0) break;
                        state = (c == '\r' || c == '\n') ? state + 1 : 0;
                    }
                    OutputStream out = s.getOutputStream();
                    out.write(responses.get(next.getAndIncrement() % responses.size()));
                    out.flush();
                } catch (IOException closed) {
                    return;
                }
            }
        }

        @Override public void close() throws IOException {
            socket.close();
            try {
                thread.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    static Map<String, Object> fetch(List<byte[]> responses, int times) throws Exception {
        try (CannedServer server = new CannedServer(responses)) {
            RewriteCheck check = new RewriteCheck(server.url(), Path.of("/nonexistent"), SIZE, 1, 1);
            byte[] buf = check.newBody();
            for (int i = 0; i < times; i++) check.fetchOnce(buf);
            return check.counts();
        }
    }

    @Test
    void aCompleteMixedResponseIsCountedMixedAndACutOffOneCutOff() throws Exception {
        byte[] mixed = body(1, 1, 1, 1, 2, 2, 2, 2), clean = body(1, 1, 1, 1, 1, 1, 1, 1);
        Map<String, Object> c = fetch(List.of(
                CannedServer.response(mixed, SIZE, "\"a\""),
                CannedServer.response(clean, SIZE - 5000, "\"a\""),     // closed 5000 bytes short
                CannedServer.response(mixed, SIZE - 100, "\"a\""),
                CannedServer.response(clean, SIZE, "\"a\"")), 4);
        assertEquals(1L, c.get("completeMixed"), c::toString);
        assertEquals(1L, c.get("cutOffClean"), c::toString);
        assertEquals(1L, c.get("cutOffMixed"), c::toString);
        assertEquals(1L, c.get("completeClean"), c::toString);
        assertEquals(4L, c.get("responses"), c::toString);
        assertEquals(0L, c.get("errors"), c::toString);
        assertEquals(0L, c.get("etagConflicts"), c::toString);
    }

    @Test
    void oneEtagForTwoVersionsIsAConflict() throws Exception {
        Map<String, Object> c = fetch(List.of(
                CannedServer.response(body(1, 1, 1, 1, 1, 1, 1, 1), SIZE, "\"same\""),
                CannedServer.response(body(2, 2, 2, 2, 2, 2, 2, 2), SIZE, "\"same\"")), 2);
        assertEquals(2L, c.get("completeClean"), c::toString);
        assertEquals(1L, c.get("etagConflicts"), c::toString);
    }

    @Test
    void aRunRewritesTheFileAndFetchesAtLeastOnce(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("rewrite.bin");
        StampedBlocks.writeVersion(f, 0, SIZE);
        try (CannedServer server = new CannedServer(List.of(CannedServer.response(body(0, 0, 0, 0, 0, 0, 0, 0), SIZE, "\"x\"")))) {
            Map<String, Object> c = new RewriteCheck(server.url(), f, SIZE, 2, 1).run(50);
            assertTrue((Long) c.get("versionsWritten") >= 1, c::toString);
            assertTrue((Long) c.get("completeClean") >= 2, c::toString);
            byte[] b = Files.readAllBytes(f);
            assertEquals(new BodyVerdict.Clean((Long) c.get("versionsWritten"), SIZE, true), StampedBlocks.check(b, b.length, true));
        }
    }
}
