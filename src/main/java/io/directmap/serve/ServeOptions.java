package io.directmap.serve;

import java.net.InetAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;

/**
 * How {@code dmap serve} runs.
 *
 * @param root           the directory served; nothing outside it is
 * @param bind           the address to listen on
 * @param port           the port; 0 picks a free one ({@link FileServer#port()} says which)
 * @param chunkBytes     the NIC reads and sends a response this much at a time (a multiple of the page
 *                       size); each connection holds two such buffers of NIC memory
 * @param maxConnections connections beyond this get 503 and are closed
 * @param hold           how long a change to a served file waits for a window being sent before
 *                       that response is reset
 * @param writeTimeout   a client that takes no bytes for this long is disconnected
 * @param idleTimeout    a keep-alive connection with no request for this long is closed
 * @param sendfile       when pages of the page cache are sent with sendfile
 */
public record ServeOptions(Path root, InetAddress bind, int port, long chunkBytes, int maxConnections, Duration hold,
                           Duration writeTimeout, Duration idleTimeout, Sendfile sendfile) {
    /** When ranges whose pages the file system left in the page cache are sent with sendfile(2). */
    public enum Sendfile {
        /**
         * To peers on other hosts only, where the transport gives the socket's descriptor (epoll): a
         * loopback peer's receive queue holds the very page-cache pages that sendfile handed over
         * until the client reads them, so no send-queue check can say they are gone; those get a copy.
         */
        AUTO,
        /** Always (the coherence of a response to a loopback peer is then not guaranteed). */
        ALWAYS,
        /** Never: every byte goes through NIC memory. */
        NEVER
    }

    /** Checks the values. */
    public ServeOptions {
        Objects.requireNonNull(root, "root");
        Objects.requireNonNull(bind, "bind");
        if (port < 0 || port > 65535) throw new IllegalArgumentException("port " + port + ": give 0 to 65535");
        if (chunkBytes < 4096 || chunkBytes % 4096 != 0) {
            throw new IllegalArgumentException("chunk of " + chunkBytes + " bytes: give a multiple of 4 KiB");
        }
        if (maxConnections < 1) throw new IllegalArgumentException("max connections " + maxConnections + ": give at least 1");
    }

    /** Defaults: port 8080 on every address, 1 MiB chunks, 256 connections, hold 2 s, write timeout 30 s, idle 60 s. */
    public static ServeOptions defaults(Path root) {
        return new ServeOptions(root, anyAddress(), 8080, 1L << 20, 256, Duration.ofSeconds(2), Duration.ofSeconds(30),
                Duration.ofSeconds(60), Sendfile.AUTO);
    }

    private static InetAddress anyAddress() {
        try {
            return InetAddress.getByAddress(new byte[4]);
        } catch (java.net.UnknownHostException e) {
            throw new AssertionError(e);
        }
    }

    /** {@return these options on another address and port} */
    public ServeOptions listen(InetAddress address, int newPort) {
        return new ServeOptions(root, address, newPort, chunkBytes, maxConnections, hold, writeTimeout, idleTimeout, sendfile);
    }

    /** {@return these options with another sendfile choice} */
    public ServeOptions sendfile(Sendfile s) {
        return new ServeOptions(root, bind, port, chunkBytes, maxConnections, hold, writeTimeout, idleTimeout, s);
    }

    /** {@return these options with other limits} */
    public ServeOptions limits(long chunk, int connections, Duration holdFor, Duration write, Duration idle) {
        return new ServeOptions(root, bind, port, chunk, connections, holdFor, write, idle, sendfile);
    }
}
