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
 * <p>The futures of asynchronous reads complete on the device's reader threads (or, for reads
 * still queued when the device closes, on the thread that closes it), so the dependent stages a
 * caller adds without an executor ({@code thenApply}, {@code whenComplete}, ...) run there too. Do
 * not block in them, least of all on another read of the same device: that holds a reader thread
 * the read waits for. Use the {@code *Async} variants with an executor of your own to block.
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
    private final boolean writable;
    private final InFlight reads;
    private final Set<Read> open = Collections.newSetFromMap(new IdentityHashMap<>());   // guarded by itself

    FileMapping(Device device, Vma vma, Binding binding, long start, long end, boolean writable) {
        this.writable = writable;
        this.device = device;
        this.vma = vma;
        this.binding = binding;
        this.path = vma.file().path();
        this.start = start;
        this.end = end;
        this.reads = new InFlight("the mapping of " + path + " [" + start + ", " + end + ") into " + device.name(),
                "map it again with Device.map");
    }

    /** {@return the file} */
    public Path path() { return path; }

    /** {@return the device it is mapped into} */
    public Device device() { return device; }

    /** {@return the first byte of the mapped range (a file offset)} */
    public long start() { return start; }

    /** {@return one past the last byte of the mapped range (a file offset)} */
    public long end() { return end; }

    /** {@return end() - start()} */
    public long length() { return end - start; }

    /** {@return the file's size when it was mapped} */
    public long fileSize() { return vma.length(); }

    /** {@return how many times the file system took a window back because the file changed (or moved) under it} */
    public long invalidations() { return binding.invalidations(); }

    /**
     * Reads [offset, offset + length) of the file (file offsets inside the mapped range, any
     * alignment) into device memory that the mapping allocates; close the Read (or the mapping) to
     * give it back. Blocks until the bytes are in device memory.
     *
     * @param offset the first file offset
     * @param length how many bytes, at least 1
     * @return the read, owning the device memory it allocated
     * @throws IOException bad input (the message names the file, the range and what to give
     *         instead), device memory that is full, or a read the system failed (the message
     *         names the file and the range, the system's failure is its cause; a
     *         {@link io.directmap.device.DmaInFlightException} is thrown as it is)
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
     * @param offset the first file offset, a multiple of the page size
     * @param length how many bytes, at least 1
     * @param into device memory of this mapping's device, or null for memory the mapping allocates
     * @return the read; it owns no memory when into is given
     * @throws IOException as {@link #read(long, long)}, and when into is too small or offset unaligned
     * @throws IllegalStateException when the mapping or into is closed
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
     *
     * <p>The future completes on a reader thread: see the class comment before adding stages that
     * block. Cancelling it before the read starts keeps the read from running; a read already
     * started cannot be cancelled: it runs to its end (and keeps writing into its buffer until
     * then; closing that buffer waits for it), and the memory it allocated is given back.
     *
     * @param offset the first file offset
     * @param length how many bytes, at least 1
     * @return the future of the read
     */
    public CompletableFuture<Read> readAsync(long offset, long length) {
        return readAsync(offset, length, null);
    }

    /**
     * {@link #read(long, long, DeviceBuffer)} on one of the device's reader threads (see
     * {@link #readAsync(long, long)}, about cancelling and the threads its future completes on).
     *
     * @param offset the first file offset, a multiple of the page size
     * @param length how many bytes, at least 1
     * @param into device memory of this mapping's device, or null for memory the mapping allocates
     * @return the future of the read
     */
    public CompletableFuture<Read> readAsync(long offset, long length, DeviceBuffer into) {
        CompletableFuture<Read> f = new CompletableFuture<>();
        device.submit(() -> {
            if (f.isDone()) return;   // cancelled (or failed by a close) before it started: read nothing
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

    /** {@return true when it was mapped for writing ({@link Device#mapForWrite})} */
    public boolean writable() { return writable; }

    /**
     * Writes the first length bytes of from into the file at offset, through the device: where the
     * file system and the block device agree (a written, unshared extent with no page cached, below
     * the file's last page) the device writes the blocks directly with O_DIRECT; everywhere else the
     * file system writes them through the page cache, and the part says why. When it returns, the
     * file reads back as written (no cached page keeps the old bytes) and its mtime has moved; with
     * durable, the bytes are on stable storage too (the block devices flushed, the file synced).
     * Devices write whole pages: offset must be a multiple of the page size, and so must length
     * unless the write ends at the end of the mapped range.
     *
     * @param offset  the first file offset, a multiple of the page size, inside the mapped range
     * @param from    device memory of this mapping's device holding the bytes from its start
     * @param length  how many bytes, at least 1
     * @param durable whether the bytes must be durable when this returns
     * @return which way each range went
     * @throws IOException bad input (a mapping not made for writing, a range outside it, unaligned,
     *         memory of another device or too small; the message says what to give instead), or a
     *         write that failed: then every block of the range holds its old or its new bytes, and the
     *         message names the range that failed
     * @throws IllegalStateException when the mapping or from is closed
     */
    public Written write(long offset, DeviceBuffer from, long length, boolean durable) throws IOException {
        reads.enter();
        try {
            return writeEntered(offset, from, length, durable);
        } finally {
            reads.exit();
        }
    }

    private Written writeEntered(long offset, DeviceBuffer from, long length, boolean durable) throws IOException {
        long page = Process.PAGE_SIZE;
        String what = path + ": write [" + offset + ", " + (offset + length) + ")";
        if (!writable) throw Internals.invalid(what + ": the file was mapped for reading; map it with Device.mapForWrite");
        if (length <= 0) throw Internals.invalid(what + ": give a length of at least 1 byte");
        if (offset < start || offset > end - length) {
            throw Internals.invalid(what + " is outside the mapped range [" + start + ", " + end + "); write inside it");
        }
        if (offset % page != 0 || (length % page != 0 && offset + length != end)) {
            throw Internals.invalid(what + " is not whole pages; devices write whole pages: give an offset that is a multiple of "
                    + page + " and a length that is too, or that ends at the end of the mapped range");
        }
        if (from.device() != device) {
            throw Internals.invalid(what + ": " + from + " is not memory of " + device.name() + "; allocate it with "
                    + device.name() + ".allocate(bytes)");
        }
        if (from.size() < length) throw Internals.invalid(what + ": " + from + " holds fewer than " + length + " bytes");
        MemorySegment src = from.beginWrite();
        try {
            Binding.Write w = binding.write(offset, src.asSlice(0, length), durable, done -> { });
            return new Written(path, offset, length, w.directBytes(), w.fallbackBytes(), Internals.parts(w.segments(), offset, offset + length));
        } catch (IOException e) {
            throw Internals.fromBelow(what, e);
        } finally {
            from.endWrite();
        }
    }

    /** {@return a new, empty batch of reads of this mapping ({@link ReadBatch})} */
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
            owned = device.allocateMemory(path + ": read [" + offset + ", " + (offset + length) + ")", bytes,
                    "close Reads you no longer need, read a smaller range, or give the device more memory");
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
        } catch (IOException e) {
            // binding.read returns only when no DMA of it can still land in dst (memory it could not
            // wait for was set aside, and closing the buffer keeps it).
            if (owned != null) owned.close();
            throw Internals.fromBelow(path + ": read [" + offset + ", " + (offset + length) + ")", e);
        } catch (RuntimeException | Error e) {
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
     * rest suppressed. A second or concurrent close waits until the first has finished (an
     * interrupt does not end that wait), and returns without throwing.
     *
     * @throws IOException when the file could not be unmapped
     */
    @Override
    public void close() throws IOException {
        if (!reads.close()) return;
        Closer<IOException> closer = Closer.keeping(IOException.class);
        try {
            List<Read> left;
            synchronized (open) {
                left = new ArrayList<>(open);
            }
            closer.closeEach(left, Read::close);
            closer.run(binding::close);
            closer.run(vma::close);
            closer.run(() -> device.forget(this));
        } finally {
            reads.closed();
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
