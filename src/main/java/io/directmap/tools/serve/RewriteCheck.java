package io.directmap.tools.serve;

import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * The mixed-version count, against any HTTP server: readers download one URL over and over while a
 * writer rewrites the file behind it with stamped versions ({@link StampedBlocks}), one new version
 * every {@code writeEvery} milliseconds, each through a descriptor of its own. Every body is checked
 * block by block and counted by what it held (one version, two, a torn block) and whether it was
 * complete or cut off. A complete body that is not clean is the failure the issue forbids; a cut-off
 * one is a transfer the client knows failed.
 *
 * <p>ETags are checked without knowing how a server makes them: each complete clean body files its
 * ETag under the version it held, and an ETag seen with two different versions is a conflict (a
 * client that revalidates with it would keep the wrong bytes). nginx's ETag is the mtime in
 * seconds and the size, so every two versions written within one second conflict.
 */
public final class RewriteCheck {
    private final URI url;
    private final Path file;
    private final long size;
    private final int readers;
    private final long writeEveryMillis;

    private final LongAdder completeClean = new LongAdder(), completeMixed = new LongAdder(), completeTorn = new LongAdder();
    private final LongAdder cutClean = new LongAdder(), cutMixed = new LongAdder(), cutTorn = new LongAdder();
    private final LongAdder otherStatus = new LongAdder(), errors = new LongAdder(), etagConflicts = new LongAdder();
    private final LongAdder bodyBytes = new LongAdder();
    private final AtomicLong versions = new AtomicLong();
    private final Map<String, Long> etagVersion = new ConcurrentHashMap<>();
    /** Where complete bodies turned wrong: the first block of another version (or torn), a few samples for a bug report. */
    private final java.util.Queue<String> wrongAt = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private volatile String firstError;

    /** url serves file, whose first size bytes (a multiple of 4 KiB) are rewritten. */
    public RewriteCheck(URI url, Path file, long size, int readers, long writeEveryMillis) {
        if (size % StampedBlocks.BLOCK != 0 || size > Integer.MAX_VALUE - StampedBlocks.BLOCK)
            throw new IllegalArgumentException("size " + size + " must be a multiple of 4 KiB below 2 GiB");
        this.url = url;
        this.file = file;
        this.size = size;
        this.readers = readers;
        this.writeEveryMillis = writeEveryMillis;
    }

    /** Runs readers and the writer for {@code millis}; returns the counts (also when a thread failed). */
    public Map<String, Object> run(long millis) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + millis * 1_000_000L;
        Thread[] threads = new Thread[readers];
        for (int i = 0; i < readers; i++) {
            threads[i] = Thread.ofPlatform().name("rewrite-check-reader-" + i).start(() -> readUntil(deadline));
        }
        IOException writeFailure = null;
        try {
            while (System.nanoTime() < deadline) {
                StampedBlocks.writeVersion(file, versions.incrementAndGet(), size);
                Thread.sleep(writeEveryMillis);
            }
        } catch (IOException e) {
            writeFailure = e;
        } finally {
            for (Thread t : threads) t.join();
        }
        if (writeFailure != null) throw new IOException("rewriting " + file + " failed: " + writeFailure.getMessage(), writeFailure);
        return counts();
    }

    private void readUntil(long deadline) {
        byte[] body = newBody();
        do { // at least once, however late this thread starts
            fetchOnce(body);
        } while (System.nanoTime() < deadline);
    }

    byte[] newBody() {
        return new byte[(int) size + StampedBlocks.BLOCK];
    }

    /** One GET, counted; an exception before the body (refused, reset, no status line) counts as an error. */
    void fetchOnce(byte[] body) {
        try {
            fetchAndCount(body);
        } catch (IOException e) {
            errors.increment();
            if (firstError == null) firstError = e.toString();
        }
    }

    private void fetchAndCount(byte[] body) throws IOException {
        HttpURLConnection c = (HttpURLConnection) url.toURL().openConnection();
        c.setUseCaches(false);
        c.setConnectTimeout(5_000);
        c.setReadTimeout(30_000);
        int status = c.getResponseCode();
        if (status != 200) {
            otherStatus.increment();
            drain(status >= 400 ? c.getErrorStream() : c.getInputStream());
            return;
        }
        long declared = c.getContentLengthLong();
        String etag = c.getHeaderField("ETag");
        int n = 0;
        boolean cut = false;
        try (InputStream in = c.getInputStream()) {
            for (int r; n < body.length && (r = in.read(body, n, body.length - n)) > 0; ) n += r;
        } catch (IOException e) {
            cut = true; // the server closed the connection before Content-Length: the client sees a failed transfer
        }
        bodyBytes.add(n);
        boolean complete = !cut && declared == size && n == size;
        BodyVerdict v = StampedBlocks.check(body, n, complete);
        switch (v) {
            case BodyVerdict.Clean clean -> {
                (complete ? completeClean : cutClean).increment();
                if (complete && etag != null) {
                    Long before = etagVersion.putIfAbsent(etag, clean.version());
                    if (before != null && before != clean.version()) etagConflicts.increment();
                }
            }
            case BodyVerdict.Mixed m -> {
                (complete ? completeMixed : cutMixed).increment();
                if (complete && wrongAt.size() < 8) wrongAt.add("block " + m.block() + ": version " + m.version() + " then " + m.otherVersion());
            }
            case BodyVerdict.Torn t -> {
                (complete ? completeTorn : cutTorn).increment();
                if (complete && wrongAt.size() < 8) wrongAt.add("block " + t.block() + ": torn");
            }
        }
    }

    private static void drain(InputStream in) throws IOException {
        if (in == null) return;
        try (in) {
            in.transferTo(java.io.OutputStream.nullOutputStream());
        }
    }

    Map<String, Object> counts() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("url", url.toString());
        m.put("versionsWritten", versions.get());
        m.put("responses", completeClean.sum() + completeMixed.sum() + completeTorn.sum() + cutClean.sum() + cutMixed.sum()
                + cutTorn.sum());
        m.put("completeClean", completeClean.sum());
        m.put("completeMixed", completeMixed.sum());
        m.put("completeTorn", completeTorn.sum());
        m.put("cutOffClean", cutClean.sum());
        m.put("cutOffMixed", cutMixed.sum());
        m.put("cutOffTorn", cutTorn.sum());
        m.put("otherStatus", otherStatus.sum());
        m.put("errors", errors.sum());
        m.put("firstError", firstError);
        m.put("etagConflicts", etagConflicts.sum());
        m.put("bodyBytes", bodyBytes.sum());
        m.put("completeWrongAt", java.util.List.copyOf(wrongAt));
        return m;
    }
}
