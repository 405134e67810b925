package io.directmap.serve;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Locale;

/**
 * The access log in the Common Log Format (as Apache's and nginx's "common"):
 * {@code host - - [25/Nov/2026:17:20:01 +0000] "GET /a.bin HTTP/1.1" 206 1048576}; the byte count
 * is the body bytes actually sent ("-" for none), so a response cut off shows fewer than its
 * Content-Length. Lines are written as responses end and flushed at once.
 */
final class AccessLog implements AutoCloseable {
    private static final DateTimeFormatter CLF = DateTimeFormatter.ofPattern("dd/MMM/yyyy:HH:mm:ss Z", Locale.ROOT);
    private final BufferedWriter out;

    AccessLog(Path file) throws IOException {
        this.out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    void log(String host, String requestLine, int status, long bytes) {
        String line = host + " - - [" + ZonedDateTime.now().format(CLF) + "] \"" + requestLine.replace("\"", "%22") + "\" " + status
                + " " + (bytes == 0 ? "-" : Long.toString(bytes)) + "\n";
        synchronized (out) {
            try {
                out.write(line);
                out.flush();
            } catch (IOException e) {
                // a full disk must not stop serving; the log says nothing more
            }
        }
    }

    @Override
    public void close() throws IOException {
        synchronized (out) {
            out.close();
        }
    }
}
