package io.directmap.serve;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * A minimal HTTP/1.1 client on a plain socket, for what java.net.http hides: requests sent byte
 * for byte as written (a "/../" a client library would normalise, garbage), and the bytes of a
 * body that ended short of its Content-Length (java.net.http throws them away).
 */
final class RawHttp implements AutoCloseable {
    /** A response: status, headers (names lower-case), the body received, and whether it reached its Content-Length. */
    record Response(int status, Map<String, String> headers, byte[] body, boolean complete) {
        String header(String name) { return headers.get(name.toLowerCase(Locale.ROOT)); }
    }

    private final Socket socket;
    private final InputStream in;
    private final OutputStream out;

    RawHttp(int port) throws IOException {
        this(port, 0);
    }

    /** With a receive buffer of receiveBytes (0: the system's), set before connecting, so a client that reads nothing stalls the server soon. */
    RawHttp(int port, int receiveBytes) throws IOException {
        this.socket = new Socket();
        if (receiveBytes > 0) socket.setReceiveBufferSize(receiveBytes);
        socket.connect(new java.net.InetSocketAddress(InetAddress.getLoopbackAddress(), port), 20_000);
        socket.setSoTimeout(20_000);
        this.in = socket.getInputStream();
        this.out = socket.getOutputStream();
    }

    void send(String raw) throws IOException {
        out.write(raw.getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
    }

    /** GET (or HEAD) target with extra header lines ("Name: value"), keep-alive. */
    Response request(String method, String target, String... headers) throws IOException {
        StringBuilder sb = new StringBuilder(method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n");
        for (String h : headers) sb.append(h).append("\r\n");
        send(sb.append("\r\n").toString());
        return read(method.equals("HEAD"));
    }

    /** Reads one response; a body ended by the server closing early is returned with complete false. */
    Response read(boolean head) throws IOException {
        String statusLine = line();
        if (statusLine == null) throw new IOException("the server closed the connection before a response");
        int status = Integer.parseInt(statusLine.split(" ")[1]);
        Map<String, String> headers = new LinkedHashMap<>();
        for (String l; (l = line()) != null && !l.isEmpty(); ) {
            int c = l.indexOf(':');
            headers.put(l.substring(0, c).strip().toLowerCase(Locale.ROOT), l.substring(c + 1).strip());
        }
        long length = head || status == 304 ? 0 : Long.parseLong(headers.getOrDefault("content-length", "0"));
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        byte[] buf = new byte[65536];
        boolean complete = true;
        while (body.size() < length) {
            int n;
            try {
                n = in.read(buf, 0, (int) Math.min(buf.length, length - body.size()));
            } catch (java.net.SocketException e) {
                n = -1;   // a reset: the response was cut off
            }
            if (n < 0) {
                complete = false;
                break;
            }
            body.write(buf, 0, n);
        }
        return new Response(status, headers, body.toByteArray(), complete);
    }

    private String line() throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        while (true) {
            int c;
            try {
                c = in.read();
            } catch (java.net.SocketException e) {
                c = -1;
            }
            if (c < 0) return b.size() == 0 ? null : b.toString(StandardCharsets.ISO_8859_1);
            if (c == '\n') {
                String s = b.toString(StandardCharsets.ISO_8859_1);
                return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
            }
            b.write(c);
        }
    }

    /** Whether some bytes of a response have arrived and wait to be read. */
    boolean arrived() throws IOException {
        return in.available() > 0;
    }

    /** Whether the server closed the connection (reads EOF within the socket timeout). */
    boolean closedByServer() throws IOException {
        try {
            return in.read() < 0;
        } catch (java.net.SocketException e) {
            return true;
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
