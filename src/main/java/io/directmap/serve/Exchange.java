package io.directmap.serve;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.sys.FileHandle;
import io.directmap.sys.FileVersion;
import io.directmap.sys.Process;
import io.directmap.sys.SysException;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.DefaultFileRegion;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http.QueryStringDecoder;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.URLConnection;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;

/**
 * One request and its response, on the connection's worker thread. A body is sent window by
 * window (a chunk of the connection's NIC memory at a time): each window is read through the NIC's
 * binding, so device_map decides it (direct: O_DIRECT into NIC memory; fallback: copied from the
 * page cache), or, where the window is mapped and every byte of it is in the page cache and
 * sendfile is allowed, sent with sendfile. Two windows are in flight at once: one being read while
 * the other is written to the socket.
 *
 * <p>The ETag is taken after the first window is read, so after the file's read lease is held:
 * from then on a change reaches the guard ({@link ServedFile}) before it reaches the file.
 */
final class Exchange {
    /** How often a response starts over, at least, because the file changed before its first window was read (then for up to the hold bound). */
    static final int ATTEMPTS = 5;

    private final FileServer server;
    private final Connection conn;
    private final Channel ch;
    private final FullHttpRequest req;
    private final boolean head;
    private final boolean keepAlive;
    private final long page = Process.PAGE_SIZE;
    private int status;
    private long sent;
    private final ChannelFuture[] inFlight = new ChannelFuture[2];
    private int slot;

    Exchange(FileServer server, Connection conn, FullHttpRequest req) {
        this.server = server;
        this.conn = conn;
        this.ch = conn.channel();
        this.req = req;
        this.head = req.method().equals(HttpMethod.HEAD);
        this.keepAlive = HttpUtil.isKeepAlive(req) && req.decoderResult().isSuccess();
    }

    /**
     * On the connection's event loop, with no other response of the connection in flight or queued:
     * serves a GET whose body is one window of a file version mapped already and wholly through the
     * page cache (no block device read, no mapping made, no wait), copied into the connection's NIC
     * memory and written without leaving the loop. False, with nothing sent, when the request is not
     * such a one: then it goes to a worker thread as any other.
     */
    boolean serveOnLoop() {
        if (!req.decoderResult().isSuccess() || !req.method().equals(HttpMethod.GET) || server.sendfileTo(conn)) return false;
        HttpHeaders in = req.headers();
        if (in.contains(HttpHeaderNames.RANGE) || in.contains(HttpHeaderNames.IF_MATCH) || in.contains(HttpHeaderNames.IF_NONE_MATCH)
                || in.contains(HttpHeaderNames.IF_MODIFIED_SINCE) || in.contains(HttpHeaderNames.IF_UNMODIFIED_SINCE)
                || in.contains(HttpHeaderNames.IF_RANGE)) {
            return false;
        }
        String uri = req.uri();
        if (!uri.startsWith("/") || uri.indexOf('%') >= 0 || uri.indexOf('?') >= 0) return false;
        if (!(server.resolver().resolve(uri) instanceof Resolver.Found f)) return false;   // refusals are the worker's to answer
        try (FileHandle h = f.handle()) {
            FileVersion.Version v = f.version();
            long size = v.size();
            if (size == 0 || size > server.options().chunkBytes()) return false;
            Optional<ServedFile> use = server.nic().acquireMapped(v);
            if (use.isEmpty()) return false;
            ServedFile sf = use.get();
            try {
                long to = Math.min((size + page - 1) / page * page, size);
                DeviceMemory.Buffer[] bufs;
                try {
                    bufs = conn.buffers();
                } catch (IOException e) {
                    return false;
                }
                MemorySegment dst = bufs[0].segment();
                if (!sf.beginWindow(conn)) return false;
                List<io.directmap.mm.DeviceMapping> cached = sf.cachedCoherent(0, to);
                if (cached == null) {
                    sf.endWindow(conn, false);
                    return false;
                }
                Window w = copyFromPageCache(sf, h, cached, 0, to, 0, size, dst);
                if (w == null) return false;   // copyFromPageCache checked the version after the copy
                server.meter().requests.increment();
                HttpResponse r = response(HttpResponseStatus.OK, v, f.name());
                r.headers().set(HttpHeaderNames.CONTENT_LENGTH, size);
                status = 200;
                sent = size;
                ch.write(r);
                ch.write(Unpooled.wrappedBuffer(w.memory().asByteBuffer()));
                ChannelFuture last = ch.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT);
                if (!keepAlive) last.addListener(io.netty.channel.ChannelFutureListener.CLOSE);
                conn.pending(last);
                server.meter().bodyBytes.add(size);
                AccessLog log = server.accessLog();
                if (log != null) log.log(conn.host(), req.method() + " " + req.uri() + " " + req.protocolVersion(), status, sent);
                return true;
            } finally {
                server.nic().release(sf);
            }
        } catch (SysException e) {
            return false;   // closing our descriptor failed before anything was sent: the worker tries again
        }
    }

    /** Serves it; false when the connection must close (not keep-alive, cut off, gone). */
    boolean serve() {
        // A response the event loop wrote (serveOnLoop) may still be sending from the same NIC memory.
        if (!await(conn.pending())) return false;
        server.meter().requests.increment();
        boolean goOn;
        try {
            goOn = route();
        } finally {
            AccessLog log = server.accessLog();
            if (log != null) log.log(conn.host(), req.method() + " " + req.uri() + " " + req.protocolVersion(), status, sent);
        }
        return goOn && keepAlive;
    }

    private boolean route() {
        if (!req.decoderResult().isSuccess()) {
            return error(HttpResponseStatus.BAD_REQUEST, "bad request: " + req.decoderResult().cause().getMessage(), false);
        }
        if (!req.method().equals(HttpMethod.GET) && !head) {
            return error(HttpResponseStatus.METHOD_NOT_ALLOWED, req.method() + " is not served; GET and HEAD are", true);
        }
        String uri = req.uri();
        if (!uri.startsWith("/")) return error(HttpResponseStatus.BAD_REQUEST, "the request target must be a path", true);
        String path;
        try {
            path = new QueryStringDecoder(uri).path();
        } catch (IllegalArgumentException e) {
            return error(HttpResponseStatus.BAD_REQUEST, "bad percent-encoding in the path", true);
        }
        return switch (server.resolver().resolve(path)) {
            case Resolver.Refused r -> error(HttpResponseStatus.valueOf(r.reason().status), statusText(r.reason()), true);
            case Resolver.Found f -> {
                try (FileHandle h = f.handle()) {
                    yield file(f.name(), h, f.version());
                } catch (SysException e) {
                    yield false;   // closing our descriptor failed: nothing more to send
                }
            }
        };
    }

    private static String statusText(Resolver.Reason r) {
        return switch (r) {
            case BAD_PATH -> "bad path";
            case NOT_FOUND, OUTSIDE -> "no such file";
            case NOT_REGULAR -> "not a regular file";
            case NO_PERMISSION -> "not readable by the server";
        };
    }

    private boolean file(String name, FileHandle h, FileVersion.Version first) {
        FileVersion.Version v = first;
        HttpHeaders in = req.headers();
        long deadline = System.nanoTime() + server.options().hold().toNanos();
        for (int attempt = 0; attempt < ATTEMPTS || System.nanoTime() < deadline; attempt++) {
            if (attempt > 0) pause();
            String range = in.get(HttpHeaderNames.RANGE);
            Preconditions.Outcome pre = Preconditions.evaluate(v, in.get(HttpHeaderNames.IF_MATCH), in.get(HttpHeaderNames.IF_UNMODIFIED_SINCE),
                    in.get(HttpHeaderNames.IF_NONE_MATCH), in.get(HttpHeaderNames.IF_MODIFIED_SINCE), in.get(HttpHeaderNames.IF_RANGE),
                    range != null);
            switch (pre) {
                case FAILED -> {
                    return error(HttpResponseStatus.PRECONDITION_FAILED, "precondition failed", true);
                }
                case NOT_MODIFIED -> {
                    HttpResponse r = response(HttpResponseStatus.NOT_MODIFIED, v, name);
                    return headersOnly(r);
                }
                default -> { }
            }
            ByteRanges asked = pre == Preconditions.Outcome.IGNORE_RANGE ? new ByteRanges.Whole() : ByteRanges.parse(range, v.size());
            if (asked instanceof ByteRanges.Unsatisfiable) {
                FullHttpResponse r = text(HttpResponseStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "no byte of the ranges asked is in the file");
                r.headers().set(HttpHeaderNames.CONTENT_RANGE, "bytes */" + v.size());
                return send(r);
            }
            Body body = Body.of(asked, v.size(), contentType(name));
            HttpResponse r = response(body.partial() ? HttpResponseStatus.PARTIAL_CONTENT : HttpResponseStatus.OK, v, name);
            body.headers(r.headers(), v.size());
            if (head || body.length() == 0) return headersOnly(r);
            Optional<ServedFile> use;
            try {
                use = server.nic().acquire(h, v);
            } catch (IOException | RuntimeException e) {
                return error(HttpResponseStatus.INTERNAL_SERVER_ERROR, "mapping failed: " + e.getMessage(), false);
            }
            if (use.isEmpty()) {
                v = versionOr(h, v);
                continue;
            }
            ServedFile sf = use.get();
            try {
                // The first window, before any header: its fault takes the read lease. A change since
                // our statx shows in the version now; one after it reaches the guard first.
                ByteRanges.Range r0 = body.ranges().getFirst();
                Window primed = read(sf, h, v, r0.start(), r0.end());
                FileVersion.Version now = versionOr(h, null);
                if (primed == null && failure != null) {
                    // Nothing sent yet: say what failed; the server (and this connection) go on.
                    return error(failure.status(), name + ": " + failure.message(), true);
                }
                if (primed == null || !v.equals(now)) {
                    if (now == null) return error(HttpResponseStatus.INTERNAL_SERVER_ERROR, "statx of " + name + " failed", false);
                    v = now;
                    continue;
                }
                return sendBody(sf, h, v, r, body, primed);
            } finally {
                awaitAll();
                server.nic().release(sf);
            }
        }
        return error(HttpResponseStatus.SERVICE_UNAVAILABLE, name + " was being written (held open for writing by another"
                + " process, or changed again and again) for " + server.options().hold().toMillis() + " ms; try again", true);
    }

    private static void pause() {
        try {
            Thread.sleep(1);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static FileVersion.Version versionOr(FileHandle h, FileVersion.Version fallback) {
        try {
            return FileVersion.of(h);
        } catch (SysException e) {
            return fallback;
        }
    }

    /** Why a window could not be read, for the response that has sent nothing yet. */
    private record Failure(HttpResponseStatus status, String message) {}

    private Failure failure;

    /** One window's bytes in NIC memory, ready to send: [pos, pos + length) of the file at offset at of the buffer. */
    private record Window(MemorySegment memory) {}

    /**
     * Reads the window that starts at pos (at most a chunk, inside [pos, end)) into the next NIC buffer,
     * through the binding, holding back a change while it reads. null when the file changed before it began.
     */
    private Window read(ServedFile sf, FileHandle h, FileVersion.Version v, long pos, long end) {
        long from = pos / page * page;
        long n = Math.min(end - pos, server.options().chunkBytes() - (pos - from));
        long to = Math.min((pos + n + page - 1) / page * page, v.size());
        DeviceMemory.Buffer[] bufs;
        try {
            bufs = conn.buffers();
        } catch (IOException e) {
            failure = new Failure(HttpResponseStatus.SERVICE_UNAVAILABLE, "no NIC memory for this connection's windows: " + e.getMessage());
            return null;
        }
        if (!await(inFlight[slot])) return null;
        MemorySegment dst = bufs[slot].segment();
        if (!sf.beginWindow(conn)) return null;
        List<io.directmap.mm.DeviceMapping> cached = sf.cachedCoherent(from, to);
        if (cached != null) return copyFromPageCache(sf, h, cached, from, to, pos, n, dst);
        Binding.Read r;
        boolean clean = false;
        try {
            // Never waits for coherence inside: a read that waits while counted as sending would
            // wait for a writer that waits (in its lease break) for the guard, which waits for it.
            r = sf.binding.read(from, to - from, dst, done -> { });
        } catch (IOException | RuntimeException e) {
            failure = new Failure(HttpResponseStatus.INTERNAL_SERVER_ERROR, "reading [" + from + ", " + to + ") failed: " + e.getMessage());
            return null;
        } finally {
            clean = sf.endWindow(conn, false);
        }
        if (!clean) return null;   // the change was learnt by this read: its bytes may be the new version's
        if (!r.coherent()) {
            // Another process has the file open for writing (no lease can hold back a writer that
            // opened first, or its lease break is under way): what was read may be torn mid-write
            // and is not sent. This mapping holds no lease and will never be told of a change: retire it.
            sf.retire();
            return null;
        }
        if (!sameVersion(sf, h, v)) return null;
        server.meter().directBytes.add(r.directBytes());
        server.meter().copiedBytes.add(r.fallbackBytes());
        return new Window(dst.asSlice(pos - from, n));
    }

    /**
     * The window is mapped, every byte of it through the page cache, so the file's read lease is held
     * and a change reaches the guard, which waits for this window: the bytes are copied with pread on
     * this thread, through the request's descriptor (the binding's read would hand the copy to a DMA worker thread and wait for it).
     * Called inside the window (beginWindow done); ends it.
     */
    private Window copyFromPageCache(ServedFile sf, FileHandle h, List<io.directmap.mm.DeviceMapping> cached, long from, long to, long pos, long n, MemorySegment dst) {
        boolean clean = false;
        try {
            // The request's own descriptor of the same inode (not the shared channel, which an
            // interrupted thread would close for every response).
            if (h.preadFully(dst.asSlice(0, to - from), from) < to - from) return null;   // shorter than its version: it changed
            clean = ServedFile.stillLive(cached);   // read_retry: taken back meanwhile, the bytes may be new ones
        } catch (SysException e) {
            failure = new Failure(HttpResponseStatus.INTERNAL_SERVER_ERROR, "reading [" + from + ", " + to + ") failed: " + e.getMessage());
            return null;
        } finally {
            clean &= sf.endWindow(conn, false);
        }
        if (!clean || !sameVersion(sf, h, sf.version)) return null;
        server.meter().copiedBytes.add(to - from);
        return new Window(dst.asSlice(pos - from, n));
    }

    /**
     * read_retry: whether the file is still of version v after a window was read. A change to a
     * range that no response had mapped reaches no guard (range events tell only overlapping
     * mappings); the statx does see it (see {@link ServedFile}). When it moved, the version is served
     * no more and this response is cut.
     */
    private static boolean sameVersion(ServedFile sf, FileHandle h, FileVersion.Version v) {
        FileVersion.Version now = versionOr(h, null);
        if (v.equals(now)) return true;
        sf.outdated(now == null ? "statx_failed" : "version_moved");
        return false;
    }

    private boolean sendBody(ServedFile sf, FileHandle h, FileVersion.Version v, HttpResponse r, Body body, Window primed) {
        ch.write(r);
        status = r.status().code();
        boolean sendfile = server.sendfileTo(conn);
        List<ByteRanges.Range> ranges = body.ranges();
        for (int i = 0; i < ranges.size(); i++) {
            ByteRanges.Range part = ranges.get(i);
            if (body.multipart()) ch.write(Unpooled.copiedBuffer(body.partHeader(i, v.size()), StandardCharsets.US_ASCII));
            for (long pos = part.start(); pos < part.end(); ) {
                long from = pos / page * page;
                long n = Math.min(part.end() - pos, server.options().chunkBytes() - (pos - from));
                long to = Math.min((pos + n + page - 1) / page * page, v.size());
                if (primed == null && sendfile && sf.pageCacheOnly(from, to)) {
                    if (!sendFromPageCache(sf, h, v, pos, n)) return cut(sf);
                } else {
                    Window w = primed != null ? primed : read(sf, h, v, pos, part.end());
                    primed = null;
                    if (w == null) return cut(sf);
                    ByteBuf b = Unpooled.wrappedBuffer(w.memory().asByteBuffer());
                    inFlight[slot] = ch.writeAndFlush(b);
                    slot ^= 1;
                    sent += n;
                }
                pos += n;
            }
        }
        if (body.multipart()) ch.write(Unpooled.copiedBuffer(body.closing(), StandardCharsets.US_ASCII));
        ChannelFuture last = ch.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT);
        boolean ok = awaitAll() && await(last);
        server.meter().bodyBytes.add(sent);
        return ok;
    }

    /**
     * sendfile of [pos, pos + n), holding back a change until the bytes are in the socket (and, at
     * the change, until the socket has sent them: see {@link ServedFile}).
     */
    private boolean sendFromPageCache(ServedFile sf, FileHandle h, FileVersion.Version v, long pos, long n) {
        if (!awaitAll()) return false;
        if (!sf.beginWindow(conn)) return false;
        boolean ok;
        try {
            // The window is mapped, so from here a change to it reaches the guard, which waits for
            // this window; one made before (say, before another response mapped the window) shows in
            // the version now.
            if (!sameVersion(sf, h, v)) return false;
            DefaultFileRegion region = new DefaultFileRegion(sf.channel, pos, n);
            // The region closes its channel when released; the channel is the served file's, shared
            // by every response: one extra reference keeps it from ever being closed by Netty.
            region.retain();
            ok = await(ch.writeAndFlush(region));
        } finally {
            sf.endWindow(conn, true);
        }
        if (ok) {
            sent += n;
            server.meter().sendfileBytes.add(n);
        }
        return ok;
    }

    /**
     * The response ends short of its Content-Length: the file changed under it (counted as cut), or
     * the client went away or a read failed (not counted). The connection closes.
     */
    private boolean cut(ServedFile sf) {
        if (sf.changed()) server.meter().cut.increment();
        server.meter().bodyBytes.add(sent);
        // The windows already written were read before the change (each was checked): let them reach
        // the socket first (bounded by the write timeout), or a close would throw the status line and
        // headers away with them and the client would see no response at all, not a short one.
        ch.flush();
        awaitAll();
        ch.close();
        return false;
    }

    /** Waits for a write to reach the socket, at most the write timeout; a client that takes nothing that long is dropped. */
    private boolean await(ChannelFuture f) {
        if (f == null) return true;
        if (!f.awaitUninterruptibly(server.options().writeTimeout().toMillis())) {
            ch.close();
            return false;
        }
        return f.isSuccess();
    }

    private boolean awaitAll() {
        boolean ok = true;
        for (int i = 0; i < inFlight.length; i++) {
            ok &= await(inFlight[i]);
            inFlight[i] = null;
        }
        return ok;
    }

    private HttpResponse response(HttpResponseStatus s, FileVersion.Version v, String name) {
        HttpResponse r = new DefaultHttpResponse(HttpVersion.HTTP_1_1, s);
        HttpHeaders h = r.headers();
        h.set(HttpHeaderNames.SERVER, "dmap");
        h.set(HttpHeaderNames.DATE, Preconditions.httpDate(System.currentTimeMillis() / 1000));
        h.set(HttpHeaderNames.ACCEPT_RANGES, "bytes");
        h.set(HttpHeaderNames.ETAG, Preconditions.etag(v));
        h.set(HttpHeaderNames.LAST_MODIFIED, Preconditions.httpDate(Preconditions.lastModifiedSeconds(v)));
        if (s != HttpResponseStatus.NOT_MODIFIED) h.set(HttpHeaderNames.CONTENT_TYPE, contentType(name));
        HttpUtil.setKeepAlive(r, keepAlive);
        return r;
    }

    private boolean headersOnly(HttpResponse r) {
        status = r.status().code();
        ch.write(r);
        return await(ch.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT));
    }

    private FullHttpResponse text(HttpResponseStatus s, String message) {
        byte[] body = (s.code() + " " + s.reasonPhrase() + ": " + message + "\n").getBytes(StandardCharsets.UTF_8);
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, s,
                head ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(body));
        r.headers().set(HttpHeaderNames.SERVER, "dmap");
        r.headers().set(HttpHeaderNames.DATE, Preconditions.httpDate(System.currentTimeMillis() / 1000));
        r.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/plain; charset=utf-8");
        r.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, body.length);
        HttpUtil.setKeepAlive(r, keepAlive);
        return r;
    }

    private boolean send(FullHttpResponse r) {
        status = r.status().code();
        return await(ch.writeAndFlush(r));
    }

    /** An error response; keep says whether the connection may serve more requests after it. */
    private boolean error(HttpResponseStatus s, String message, boolean keep) {
        FullHttpResponse r = text(s, message);
        if (s == HttpResponseStatus.METHOD_NOT_ALLOWED) r.headers().set(HttpHeaderNames.ALLOW, "GET, HEAD");
        if (s == HttpResponseStatus.SERVICE_UNAVAILABLE) r.headers().set(HttpHeaderNames.RETRY_AFTER, "1");
        if (!keep) HttpUtil.setKeepAlive(r, false);
        return send(r) && keep;
    }

    static String contentType(String name) {
        String t = URLConnection.getFileNameMap().getContentTypeFor(name);
        return t == null ? "application/octet-stream" : t;
    }

    /** What a 200 or 206 sends: the ranges, and for more than one the multipart/byteranges framing. */
    record Body(List<ByteRanges.Range> ranges, boolean multipart, boolean partial, String boundary, String type) {
        static Body of(ByteRanges asked, long size, String type) {
            return switch (asked) {
                case ByteRanges.Parts p when p.ranges().size() > 1 ->
                        new Body(p.ranges(), true, true, Long.toHexString(ThreadLocalRandom.current().nextLong() | Long.MIN_VALUE), type);
                case ByteRanges.Parts p -> new Body(p.ranges(), false, true, "", type);
                default -> new Body(size == 0 ? List.of() : List.of(new ByteRanges.Range(0, size)), false, false, "", type);
            };
        }

        String partHeader(int i, long size) {
            return "\r\n--" + boundary + "\r\nContent-Type: " + type + "\r\nContent-Range: " + ranges.get(i).contentRange(size) + "\r\n\r\n";
        }

        String closing() {
            return "\r\n--" + boundary + "--\r\n";
        }

        long length() {
            long n = 0;
            for (ByteRanges.Range r : ranges) n += r.length();
            return n;
        }

        void headers(HttpHeaders h, long size) {
            long total = length();
            if (multipart) {
                List<String> heads = new ArrayList<>();
                for (int i = 0; i < ranges.size(); i++) heads.add(partHeader(i, size));
                for (String s : heads) total += s.length();
                total += closing().length();
                h.set(HttpHeaderNames.CONTENT_TYPE, "multipart/byteranges; boundary=" + boundary);
            } else if (partial) {
                h.set(HttpHeaderNames.CONTENT_RANGE, ranges.getFirst().contentRange(size));
            }
            h.set(HttpHeaderNames.CONTENT_LENGTH, total);
        }
    }
}
