package io.directmap;

import io.directmap.device.Binding;
import io.directmap.device.DeviceMemory;
import io.directmap.lang.Closer;
import io.directmap.mm.Vma;
import io.directmap.sys.Process;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

/**
 * A range of a file mapped into a {@link Device}: the file is mmapped, and the device reads it
 * through the proposal's device_map, window by window (each window is mapped on its first read and
 * let go when the file changes under it; a read that overlapped a change is read again, never
 * delivered stale). Reads are synchronous ({@link #read}) or asynchronous ({@link #readAsync},
 * {@link #batch}); any number may run at once, from any thread.
 *
 * <p>Closing it waits for the reads running on it, fails the asynchronous ones not yet started,
 * gives back the device memory of its reads, lets go of every window and unmaps the file.
 */
public final class FileMapping implements AutoCloseable {
    private final Device device;
    private final Vma vma;
    private final Binding binding;
    private final Path path;
    private final long start, end;
    private final InFlight reads;
    private final Set<Read> open = Collections.newSetFromMap(new IdentityHashMap<>());   // guarded by itself

    FileMapping(Device device, Vma vma, Binding binding, long start, long end) {
        this.device = device;
        this.vma = vma;
        this.binding = binding;
        this.path = vma.file().path();
        this.start = start;
        this.end = end;
        this.reads = new InFlight("the mapping of " + path + " [" + start + ", " + end + ") into " + device.name());
    }

    /** The file. */
    public Path path() { return path; }

    /** The device it is mapped into. */
    public Device device() { return device; }

    /** The first byte of the mapped range (a file offset). */
    public long start() { return start; }

    /** One past the last byte of the mapped range (a file offset). */
    public long end() { return end; }

    /** end() - start(). */
    public long length() { return end - start; }

    /** The file's size when it was mapped. */
    public long fileSize() { return vma.length(); }

    /** How many times the file system took a window back because the file changed (or moved) under it. */
    public long invalidations() { return binding.invalidations(); }

    /**
     * Reads [offset, offset + length) of the file (file offsets inside the mapped range, any
     * alignment) into device memory that the mapping allocates; close the Read (or the mapping) to
     * give it back. Blocks until the bytes are in device memory.
     *
     * @throws IOException bad input (the message names the file, the range and what to give
     *         instead), device memory that is full, or a read the system failed
     * @throws IllegalStateException when the mapping is closed
     */
    public Read read(long offset, long length) throws IOException {
        return read(offset, length, null);
    }

    /**
     * Reads [offset, offset + length) of the file into the start of into, as cuFileRead reads into
     * a device pointer. Devices move whole pages: offset must be a multiple of the page size, and
     * into must hold length rounded up to a page. Closing into waits for this read.
     *
     * @throws IOException as {@link #read(long, long)}, and when into is too small or offset unaligned
     */
    public Read read(long offset, long length, DeviceBuffer into) throws IOException {
        reads.enter();
        try {
            return readEntered(offset, length, into);
        } finally {
            reads.exit();
        }
    }

    /**
     * {@link #read(long, long)} on one of the device's reader threads: at most the device's queue
     * depth run at once, the rest wait their turn. The future fails with what the synchronous read
     * would throw (bad input fails only this future), or with IllegalStateException when the
     * mapping was closed before the read started.
     */
    public CompletableFuture<Read> readAsync(long offset, long length) {
        return readAsync(offset, length, null);
    }

    /** {@link #read(long, long, DeviceBuffer)} on one of the device's reader threads (see {@link #readAsync(long, long)}). */
    public CompletableFuture<Read> readAsync(long offset, long length, DeviceBuffer into) {
        CompletableFuture<Read> f = new CompletableFuture<>();
        device.submit(() -> {
            Read r;
            try {
                r = read(offset, length, into);
            } catch (Throwable t) {
                f.completeExceptionally(t);
                return;
            }
            // A future cancelled meanwhile has no one to give the memory back: do it here.
            if (!f.complete(r)) r.close();
        }, f);
        return f;
    }

    /** A batch of reads of this mapping, submitted together ({@link ReadBatch}). */
    public ReadBatch batch() {
        return new ReadBatch(this);
    }

    private Read readEntered(long offset, long length, DeviceBuffer into) throws IOException {
        long page = Process.PAGE_SIZE;
        if (length <= 0) {
            throw Internals.invalid(path + ": read of " + length + " bytes at " + offset + "; give a length of at least 1 byte");
        }
        if (offset < start || offset > end - length) {
            throw Internals.invalid(path + ": read [" + offset + ", " + (offset + length) + ") is outside the mapped range ["
                    + start + ", " + end + "); read inside it, or map a larger range");
        }
        long from = offset / page * page;
        // Whole pages, up to the end of the file (where the binding reads the last page's tail as zeros).
        long to = Math.min(roundUpPage(offset + length), vma.length());
        long bytes = roundUpPage(to - from);
        DeviceMemory.Buffer owned = null;
        MemorySegment dst;
        long at;
        if (into == null) {
            owned = device.allocateMemory(path.toString(), bytes);
            dst = owned.segment();
            at = offset - from;
        } else {
            if (offset % page != 0) {
                throw Internals.invalid(path + ": read [" + offset + ", " + (offset + length) + ") into " + into
                        + " starts inside a page; give an offset that is a multiple of the page size (" + page
                        + " bytes), or read(offset, length) into memory the mapping allocates");
            }
            if (into.device() != device) {
                throw Internals.invalid(path + ": " + into + " is not memory of " + device.name() + "; allocate it with "
                        + device.name() + ".allocate(bytes)");
            }
            if (into.size() < bytes) {
                throw Internals.invalid(path + ": read [" + offset + ", " + (offset + length) + ") needs " + bytes
                        + " bytes of device memory (whole pages) and " + into + " has " + into.size()
                        + "; allocate at least " + bytes + " bytes");
            }
            dst = into.beginWrite();
            at = 0;
        }
        try {
            Binding.Read r = binding.read(from, to - from, dst, done -> { });
            // From the segments the delivered attempts were read through, not from what is mapped now:
            // a window may be taken back, or faulted anew, as soon as binding.read returns.
            List<Part> parts = Internals.parts(r.segments(), offset, offset + length);
            Read read = new Read(path, offset, length, r.directBytes(), r.fallbackBytes(), r.retries(), r.coherent(), parts,
                    dst.asSlice(at, length).asReadOnly(), owned, this);
            if (owned != null) {
                synchronized (open) {
                    open.add(read);
                }
            }
            return read;
        } catch (IOException | RuntimeException | Error e) {
            // binding.read returns only when no DMA of it can still land in dst (memory it could not
            // wait for was set aside, and closing the buffer keeps it).
            if (owned != null) owned.close();
            throw e;
        } finally {
            if (into != null) into.endWrite();
        }
    }

    void forget(Read read) {
        synchronized (open) {
            open.remove(read);
        }
    }

    /**
     * Waits for the reads running on this mapping (asynchronous ones not yet started fail), gives
     * back the device memory of its reads, lets go of every window (device_unmap) and unmaps the
     * file. Every step runs whatever the one before it threw; the first failure is thrown with the
     * rest suppressed.
     */
    @Override
    public void close() throws IOException {
        if (!reads.close()) return;
        List<Read> left;
        synchronized (open) {
            left = new ArrayList<>(open);
        }
        Closer<IOException> closer = Closer.keeping(IOException.class);
        try {
            closer.closeEach(left, Read::close);
            closer.run(binding::close);
            closer.run(vma::close);
        } finally {
            device.forget(this);
        }
        closer.throwIfFailed();
    }

    @Override
    public String toString() {
        return path + " [" + start + ", " + end + ") in " + device.name();
    }

    private static long roundUpPage(long v) {
        long page = Process.PAGE_SIZE;
        return (v + page - 1) / page * page;
    }
}
