package io.directmap.device;

import io.directmap.mm.DeviceMapping;
import io.directmap.mm.InvalidRequestException;
import io.directmap.mm.Invalidation;
import io.directmap.mm.MapFlag;
import io.directmap.mm.MapMode;
import io.directmap.mm.Segment;
import io.directmap.mm.Transfer;
import io.directmap.mm.Vma;
import io.directmap.sys.Process;
import io.directmap.sys.Units;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.LongConsumer;

/**
 * A device's live view of [start, end) of a vma, as a GPU driver mirrors a range with HMM: the
 * range is cut into windows; each window has an interval notifier and faults through device_map
 * on first access. Reads follow the read_begin / read_retry protocol: a read that overlapped an
 * invalidation, or whose blocks moved meanwhile, is read again, never delivered. On invalidation
 * a window stops new DMA, waits for what is in flight, drops its table entries, calls
 * device_unmap, and only then acknowledges.
 *
 * <p>Every pin (a window's count of DMA in flight) is dropped in a {@code finally}, whatever the
 * fault, the DMA, the progress callback or the file system throws, so invalidation, {@link #close}
 * and munmap never wait for a DMA that will not end.
 *
 * <p>A binding has at most {@link #MAX_WINDOWS} (16,384) windows, as the kernel bounds the vmas of a
 * process (vm.max_map_count). Each window is an interval notifier of the vma: binding and closing
 * 65,536 windows took 7.6 s on a busy 2-core VM, 16,384 took 0.8 s (measured when the vma kept its
 * notifiers in a list that every insert copied; it now keeps them in an interval index). 16,384 windows of 8 MiB (the CLI's default) cover 128 GiB;
 * a range that would need more is refused with the smallest window it allows
 * ({@link #smallestWindow}).
 *
 * <p>A {@link Window} does one window's part; {@link BindingStats} holds the counters.
 */
public final class Binding implements AutoCloseable {
    /** The most windows one binding may have (see the class comment). */
    public static final int MAX_WINDOWS = 16_384;

    /**
     * What one read saw, and which way each of its bytes came.
     *
     * @param directBytes   bytes read straight from a peer (the {@link Segment.Direct} lengths in segments)
     * @param fallbackBytes bytes read through the page cache (the rest of the read)
     * @param retries       attempts read again because the file changed under them, or their
     *                      blocks moved, or their DMA failed (never delivered)
     * @param coherent      false when a window's mapping could not hold writers back. True
     *                      promises, per window, that the bytes it delivered were one version of
     *                      its range, held by a mapping until they were read (read_retry), not
     *                      that the windows of one read are of the same version: windows are
     *                      mapped, checked and read again one by one, and with range events a
     *                      change to a window not mapped (or taken back and read again) goes on
     *                      while another window of the read is already done. A caller that needs
     *                      one version across windows compares the file's version before and after
     *                      the read ({@code FileVersion}; dmap serve does so after each window)
     * @param segments      the segments each window's bytes were actually read through: the
     *                      mapping of the attempt that was delivered (not of attempts read again),
     *                      cut to the part of the read that window served. In order, they cover the
     *                      read's [offset, offset + length) exactly when the exporter's mappings
     *                      cover their requests, as the contract says ({@link DeviceMapping#segments}).
     *                      Segments wholly inside the read are the mapping's own objects; the list
     *                      is unmodifiable, and stays true after the mapping is taken back or the
     *                      window faults anew.
     */
    public record Read(long directBytes, long fallbackBytes, int retries, boolean coherent, List<Segment> segments) {
        /** Refuses a null segments list; the list is kept as given, not copied. */
        public Read {
            Objects.requireNonNull(segments, "segments");
        }
    }

    /**
     * What one write did, and which way each of its bytes went.
     *
     * @param directBytes   bytes the device wrote straight to a peer block device
     * @param fallbackBytes bytes written through the file system (its page cache)
     * @param segments      the segments of the mappings the bytes were written through, cut to the
     *                      write, in order; they cover [offset, offset + length)
     */
    public record Write(long directBytes, long fallbackBytes, List<Segment> segments) {
        /** Refuses a null segments list. */
        public Write {
            Objects.requireNonNull(segments, "segments");
        }
    }

    /**
     * An invalidation as the device lived it: what the file system said, and how long letting go took.
     *
     * @param invalidation what the file system said: the range and why
     * @param windowStart  the first file offset of the window let go of
     * @param windowEnd    the file offset after the window's last one
     * @param letGoNanos   how long the window took to let go (stop new DMA, wait for what was in
     *                     flight, drop its table entries, device_unmap), in nanoseconds
     */
    public record LetGo(Invalidation invalidation, long windowStart, long windowEnd, long letGoNanos) {}

    private final SoftwareDevice device;
    private final Vma vma;
    private final Set<MapFlag> flags;
    private final MapMode mode;
    private final long start, end;
    private final List<Window> windows = new ArrayList<>();
    private final long windowBytes;
    private volatile Duration coherentWait = Duration.ZERO;
    private volatile Consumer<LetGo> onLetGo = l -> { };
    private volatile boolean closed;

    final BindingStats stats = new BindingStats();

    Binding(SoftwareDevice device, Vma vma, long start, long end, long windowBytes, Set<MapFlag> flags, MapMode mode) {
        this.device = device;
        this.vma = vma;
        this.flags = Set.copyOf(flags);
        this.mode = mode;
        this.start = start;
        this.end = end;
        this.windowBytes = windowBytes;
        try {
            for (long s = start; s < end; s += windowBytes) {
                Window w = new Window(this, s, Math.min(end, s + windowBytes));
                w.notifier = vma.insertNotifier(w.start, w.end, w);
                windows.add(w);
            }
        } catch (RuntimeException | Error x) {
            // The vma was unmapped meanwhile: take back the notifiers already inserted.
            for (Window w : windows) w.notifier.remove();
            throw x;
        }
    }

    /**
     * Refuses a window size the engine cannot use (not a positive multiple of the page size) or one
     * that would cut [start, end) into more than {@link #MAX_WINDOWS} windows; the message gives the
     * smallest window this range allows.
     */
    static void checkWindows(String file, long start, long end, long windowBytes) throws InvalidRequestException {
        long page = Process.PAGE_SIZE;
        long smallest = smallestWindow(end - start);
        if (windowBytes <= 0 || windowBytes % page != 0) {
            throw new InvalidRequestException(file + ": a window of " + windowBytes + " bytes cannot bind " + Units.range(start, end)
                    + "; give a positive multiple of the page size (" + page + " bytes), at least " + Units.bytes(smallest));
        }
        long count = Math.ceilDiv(end - start, windowBytes);
        if (count > MAX_WINDOWS) {
            throw new InvalidRequestException(file + ": binding " + Units.range(start, end) + " (" + (end - start)
                    + " bytes) in windows of " + Units.bytes(windowBytes) + " would need " + count + " windows, more than the "
                    + MAX_WINDOWS + " a binding may have; give a window of at least " + Units.bytes(smallest)
                    + " (" + smallest + " bytes) or bind a smaller range");
        }
    }

    /**
     * The smallest window (a multiple of the page size) that cuts rangeBytes into at most MAX_WINDOWS windows.
     *
     * @param rangeBytes the length of the range to bind
     * @return the window size, at least one page
     */
    public static long smallestWindow(long rangeBytes) {
        long page = Process.PAGE_SIZE;
        return Math.max(page, Math.ceilDiv(Math.ceilDiv(rangeBytes, MAX_WINDOWS), page) * page);
    }

    /** {@return the vma it mirrors} */
    public Vma vma() { return vma; }

    /** {@return the first file offset bound (page-aligned)} */
    public long start() { return start; }

    /** {@return the file offset after the last one bound} */
    public long end() { return end; }

    /** {@return the device that reads through it} */
    public SoftwareDevice device() { return device; }

    Set<MapFlag> flags() { return flags; }
    MapMode mode() { return mode; }
    Duration coherentWait() { return coherentWait; }
    Consumer<LetGo> onLetGo() { return onLetGo; }
    boolean isClosed() { return closed; }

    /**
     * How long a read may wait for the file to become coherent (no other process holding it open
     * for writing) before it reads through the page cache anyway and reports {@code coherent=false}.
     *
     * @param d how long to wait; zero (the default) does not wait
     * @return this binding
     */
    public Binding coherentWait(Duration d) {
        this.coherentWait = d;
        return this;
    }

    /**
     * Called after the device let go of a window, with the time it took.
     *
     * @param c told of each window let go of, on the thread that let go of it
     * @return this binding
     */
    public Binding onLetGo(Consumer<LetGo> c) {
        this.onLetGo = c;
        return this;
    }

    /** {@return how many times a window faulted through device_map} */
    public long faults() { return stats.faults.get(); }

    /** {@return how many of those faults were of a window let go of before (faulted anew)} */
    public long refaults() { return stats.refaults.get(); }

    /** {@return how many times the file system took a window back} */
    public long invalidations() { return stats.invalidations.get(); }

    /** {@return how many window reads were read again, never delivered} */
    public long retries() { return stats.retries.get(); }

    /** {@return how many reads were delivered} */
    public long reads() { return stats.reads.get(); }

    /** {@return how many delivered reads were not coherent (a writer could not be held back)} */
    public long incoherentReads() { return stats.incoherentReads.get(); }

    /** {@return the bytes delivered reads moved straight from peer block devices} */
    public long directBytes() { return stats.directBytes.get(); }

    /** {@return the bytes delivered reads moved through the page cache} */
    public long fallbackBytes() { return stats.fallbackBytes.get(); }

    /**
     * The mappings live now, one per faulted window. What a read was read through is its
     * {@link Read#segments}: a window may be taken back, or faulted anew, as soon as a read returns.
     *
     * @return a new list, in window order
     */
    public List<DeviceMapping> liveMappings() {
        List<DeviceMapping> out = new ArrayList<>();
        for (Window w : windows) {
            DeviceMapping m = w.mapping();
            if (m != null) out.add(m);
        }
        return out;
    }

    /**
     * Reads [offset, offset + length) of the file into dst (device memory, at least the length
     * rounded up to a page). offset must be page-aligned, and so must length unless the read ends at
     * the end of the mapping.
     *
     * <p>Past the end of the file: a read that reaches the file's last page leaves in dst what the
     * CPU's mapping shows there, the file's bytes and then zeros up to the end of that page (as far
     * as dst reaches), whatever dst held before. Beyond that page nothing is mapped, and a read
     * there is refused (the binding ends at most at that page).
     *
     * <p>An exception thrown by progress stops nothing in flight: the read waits for its DMA to end,
     * lets go of what it pinned, and then throws it.
     *
     * <p>The Read returned says which way each byte came ({@link Read#segments}), from the
     * mappings the delivered attempts were read through.
     *
     * <p>Coherence is per window ({@link Read#coherent}): a read of several windows may deliver an
     * older version of one window beside a newer version of another, when the file changes while
     * the read goes from window to window.
     *
     * @param offset   the first byte, a file offset inside the binding
     * @param length   how many bytes
     * @param dst      device memory, written from its start
     * @param progress told the bytes done so far, from the DMA engine's threads
     * @return what the read saw, and which way each byte came
     * @throws IOException bad input (outside the binding, unaligned), or a read the system failed
     */
    public Read read(long offset, long length, MemorySegment dst, LongConsumer progress) throws IOException {
        long page = Process.PAGE_SIZE;
        long readEnd = offset + length;
        if (offset < start || readEnd > end || length <= 0) {
            throw new InvalidRequestException(vma.file().path() + ": read [" + offset + ", " + readEnd + ") is outside the binding ["
                    + start + ", " + end + ")");
        }
        if (offset % page != 0 || (length % page != 0 && readEnd != end && readEnd != vma.length())) {
            throw new InvalidRequestException(vma.file().path() + ": read [" + offset + ", " + readEnd
                    + ") is not page-aligned; device reads move whole pages");
        }
        if (closed) throw new IllegalStateException("binding of " + vma + " is closed");
        long direct = 0, fallback = 0;
        int retried = 0;
        boolean coherent = true;
        GuardedProgress guarded = new GuardedProgress(progress);
        List<Segment> segments = new ArrayList<>();
        // Fast path: pin every window the read touches, then one DMA for all of them, so the engine's
        // queue never drains between windows; then each window's read_retry check.
        int first = (int) ((offset - start) / windowBytes);
        int last = (int) ((readEnd - 1 - start) / windowBytes);
        // Sized up front, so adding a pin never allocates (and never fails) between pin and list.
        List<Window.Pinned> pinned = new ArrayList<>(last - first + 1);
        DmaEngine.Stats dmaStats = new DmaEngine.Stats();
        long t0 = System.nanoTime();
        try {
            for (int i = first; i <= last; i++) {
                Window w = windows.get(i);
                long s = Math.max(offset, w.start), e = Math.min(readEnd, w.end);
                if (w.tryPin(s, e, pinned) == null) break;
            }
        } catch (RuntimeException | Error x) {
            for (Window.Pinned p : pinned) p.window().unpin();
            throw x;
        }
        IOException failure = transfer(pinned, offset, dst, guarded, dmaStats);
        guarded.rethrow();
        if (!pinned.isEmpty()) report(dmaStats, System.nanoTime() - t0);
        long done = 0;
        for (int i = first; i <= last; i++) {
            Window w = windows.get(i);
            long s = Math.max(offset, w.start), e = Math.min(readEnd, w.end);
            int k = i - first;
            Window.Served r = k < pinned.size() ? w.finish(pinned.get(k), failure != null, segments) : null;
            if (r == null) {
                // Not pinned, or it needs reading again: this window alone, with the whole protocol.
                long before = done;
                r = w.read(s, e, dst.asSlice(s - offset), n -> guarded.accept(before + n), segments);
                guarded.rethrow();
                retried += k < pinned.size() ? 1 : 0;
            }
            done += e - s;
            direct += r.directBytes();
            fallback += r.fallbackBytes();
            retried += r.retries();
            coherent &= r.coherent();
        }
        zeroPastEndOfFile(offset, readEnd, dst);
        stats.reads.incrementAndGet();
        stats.directBytes.addAndGet(direct);
        stats.fallbackBytes.addAndGet(fallback);
        if (!coherent) stats.incoherentReads.incrementAndGet();
        return new Read(direct, fallback, retried, coherent, Collections.unmodifiableList(segments));
    }

    /**
     * Writes src into [offset, offset + src.byteSize()) of the file through the binding's WRITE
     * mappings: each window the write touches faults through device_map with WRITE (on first use);
     * its direct segments are written to the block device with O_DIRECT, the rest through the file
     * system ({@code vma.ops().store}: pwrite, which may extend the file past its end); then,
     * before the windows are let go, the file system brings the file in line with its blocks
     * ({@code vma.ops().written}: no page-cache page keeps the old bytes, mtime and ctime move, and,
     * with durable, the block devices are flushed and the file synced).
     *
     * <p>The write goes in stretches of at most 64 MiB, each pinned while it runs: a lease break
     * (another process opening the file) waits for the stretch pinned now, never longer (the kernel
     * lets the opener go after lease-break-time anyway), so the other process sees each block with
     * its old or its new bytes, never a half-done write of a block, and the rest of the write goes
     * through the file system while that process has the file open. A failure in the middle stops the writes not yet started: every block of the range then
     * holds its old or its new bytes, and the exception names the range that failed.
     *
     * @param offset   the first file offset, page-aligned, inside the binding
     * @param src      the bytes (device memory); its size is the length written. It must end on a
     *                 page boundary, or at or past the end of the file (device writes move whole pages)
     * @param durable  whether the bytes must be on stable storage when this returns
     * @param progress told the bytes done so far, from the DMA engine's threads
     * @return which way each byte went
     * @throws IOException bad input (a binding without WRITE, outside the binding, unaligned), or a
     *         write the system failed (the message names the file and the range that failed)
     */
    public Write write(long offset, MemorySegment src, boolean durable, LongConsumer progress) throws IOException {
        long page = Process.PAGE_SIZE;
        long length = src.byteSize();
        long writeEnd = offset + length;
        Object file = vma.file().path();
        if (!flags.contains(MapFlag.WRITE)) {
            throw new InvalidRequestException(file + ": this binding was made without DEVICE_MAP_FLAG_WRITE; bind with WRITE to write");
        }
        if (offset < start || writeEnd > end || length <= 0) {
            throw new InvalidRequestException(file + ": write [" + offset + ", " + writeEnd + ") is outside the binding ["
                    + start + ", " + end + ")");
        }
        if (offset % page != 0 || (length % page != 0 && writeEnd < vma.length())) {
            throw new InvalidRequestException(file + ": write [" + offset + ", " + writeEnd + ") is not page-aligned (the file is "
                    + vma.length() + " bytes); device writes move whole pages: give a range that starts on a page and ends on one"
                    + " or at the end of the file");
        }
        if (closed) throw new IllegalStateException("binding of " + vma + " is closed");
        List<Segment> segments = new ArrayList<>();
        long direct = 0;
        // One pinned stretch of at most pinBytes at a time: a lease break (another process's open or
        // truncate) waits for the stretch pinned now, never for the whole write. The kernel lets the
        // opener go after lease-break-time (45 s by default) whether the devices let go or not, so a
        // write pinned longer than that could go on into blocks the file no longer owns.
        long stretch = Math.max(page, pinBytes / page * page);
        for (long at = offset; at < writeEnd; at += stretch) {
            long to = Math.min(writeEnd, at + stretch);
            long before = at - offset;
            if (before > 0) vma.ops().awaitBreaks(vma);
            LongConsumer sofar = before == 0 ? progress : n -> progress.accept(before + n);
            try {
                direct += writeStretch(at, to, src.asSlice(before, to - at), durable, sofar, segments);
            } catch (IOException x) {
                if (before == 0 || x instanceof DmaInFlightException) throw x;
                throw new IOException(file + ": write " + Units.range(offset, writeEnd) + ": " + Units.range(offset, at)
                        + " was written; " + x.getMessage(), x);
            }
        }
        return new Write(direct, length - direct, Collections.unmodifiableList(segments));
    }

    /**
     * How many bytes one write pins at most at a time (see {@link #write}); tests lower it to see a
     * lease break answered between stretches.
     */
    static volatile long pinBytes = 64L << 20;

    /**
     * One pinned stretch [offset, writeEnd) of a write (src holds its bytes): the DMA, then the file
     * brought in line, then the windows unpinned. Adds the segments written through to segments;
     * returns the bytes written directly.
     */
    private long writeStretch(long offset, long writeEnd, MemorySegment src, boolean durable, LongConsumer progress,
                              List<Segment> segments) throws IOException {
        Object file = vma.file().path();
        int first = (int) ((offset - start) / windowBytes);
        int last = (int) ((writeEnd - 1 - start) / windowBytes);
        List<Window.Pinned> pinned = pinLive(first, last, offset, writeEnd);
        IOException failure = null;
        long direct = 0;
        try {
            List<IommuTable.Entry> all = new ArrayList<>();
            for (Window.Pinned p : pinned) {
                all.addAll(IommuTable.window(p.entries(), vma.address() + p.start(), vma.address() + p.end(), p.start() - offset));
            }
            try {
                device.engine().write(all, src, progress, new DmaEngine.Stats());
            } catch (DmaInFlightException x) {
                throw x;
            } catch (IOException x) {
                failure = failed(offset, writeEnd, x);
            }
        } finally {
            // Still pinned: no invalidation (no other process's open) gets between the writes and this.
            for (Window.Pinned p : pinned) {
                try {
                    vma.ops().written(vma, p.mapping(), p.start(), p.end(), src.asSlice(p.start() - offset, p.end() - p.start()),
                            durable && failure == null);
                } catch (IOException | RuntimeException x) {
                    if (failure == null) failure = new IOException(file + ": write " + Units.range(p.start(), p.end())
                            + ": the file could not be brought in line with the blocks written: " + x.getMessage(), x);
                    else failure.addSuppressed(x);
                } finally {
                    p.window().unpin();
                }
            }
        }
        if (failure != null) throw failure;
        for (Window.Pinned p : pinned) {
            for (Segment seg : p.mapping().segments()) {
                long from = Math.max(p.start(), seg.start()), to = Math.min(p.end(), seg.end());
                if (to <= from) continue;
                segments.add(Window.cut(seg, from, to));
                if (seg instanceof Segment.Direct) direct += to - from;
            }
        }
        return direct;
    }

    /**
     * Pins windows first..last for a write, each with a live mapping: a mapping revoked without its
     * window being told (its owner failed to let go, and the file system gave its grants back) must
     * never be written through, so such a window lets go and faults again. Returns the pins.
     */
    private List<Window.Pinned> pinLive(int first, int last, long offset, long writeEnd) throws IOException {
        for (int attempt = 0; ; attempt++) {
            // read_begin for a write: a mapping decided earlier is written through only while the
            // exporter still stands by it (the write lease still held, the blocks still where they
            // were). A lease the kernel let go (lease-break-time passed while no one answered the
            // break) frees the file to be truncated and its blocks reused; the check takes such a
            // mapping back, and the fault below decides afresh. Checked before pinning: taking a
            // mapping back waits for the DMA pinned on it.
            for (int i = first; i <= last; i++) {
                Window w = windows.get(i);
                DeviceMapping m = w.mapping();
                if (m != null && m.isLive() && !vma.ops().verify(vma, m, Math.max(offset, w.start), Math.min(writeEnd, w.end), false)) {
                    w.letGo(null);
                }
            }
            List<Window.Pinned> pinned = new ArrayList<>(last - first + 1);
            List<Window> dead = new ArrayList<>();
            try {
                for (int i = first; i <= last; i++) {
                    Window w = windows.get(i);
                    Window.Pinned p = w.pin(Math.max(offset, w.start), Math.min(writeEnd, w.end), Long.MIN_VALUE, pinned);
                    if (!p.mapping().isLive()) dead.add(w);
                }
            } catch (IOException | RuntimeException | Error x) {
                for (Window.Pinned p : pinned) p.window().unpin();
                throw x;
            }
            if (dead.isEmpty()) return pinned;
            for (Window.Pinned p : pinned) p.window().unpin();
            for (Window w : dead) w.letGo(null);
            if (attempt >= 8) {
                throw new IOException(vma.file().path() + ": write " + Units.range(offset, writeEnd) + ": its mappings keep being"
                        + " taken back as they are made; nothing was written; try again");
            }
        }
    }

    /** The exception for a write that failed: the file, the range written, the bytes that failed, what is left. */
    private IOException failed(long offset, long writeEnd, IOException x) {
        String where = x instanceof WriteFailure w
                ? "; " + Units.range(offset + w.memoryOffset(), offset + w.memoryOffset() + w.length()) + " failed"
                : "";
        return new IOException(vma.file().path() + ": write " + Units.range(offset, writeEnd) + where + ": " + x.getMessage()
                + "; every block of the range holds either its old or its new bytes; write it again", x);
    }

    /**
     * Zeros what dst holds for [EOF, end of the last page the read reached): a page-cache copy stops
     * at EOF and an O_DIRECT read at a logical block, so without this a reused dst would show the
     * bytes of an earlier read there.
     */
    private void zeroPastEndOfFile(long offset, long readEnd, MemorySegment dst) {
        long eof = vma.length();
        long from = Math.max(eof, offset) - offset, to = Math.min(roundUpPage(readEnd) - offset, dst.byteSize());
        if (from < to) dst.asSlice(from, to - from).fill((byte) 0);
    }

    /**
     * The caller's progress callback, called from the DMA engine's threads: what it throws is kept
     * (the first one) and thrown once the DMA has ended, never into the engine mid-transfer.
     */
    private static final class GuardedProgress implements LongConsumer {
        private final LongConsumer progress;
        private volatile Throwable failure;

        GuardedProgress(LongConsumer progress) {
            this.progress = progress;
        }

        @Override
        public void accept(long done) {
            if (failure != null) return;
            try {
                progress.accept(done);
            } catch (RuntimeException | Error x) {
                synchronized (this) {
                    if (failure == null) failure = x;
                }
            }
        }

        void rethrow() {
            Throwable x = failure;
            if (x instanceof RuntimeException r) throw r;
            if (x instanceof Error e) throw e;
        }
    }

    /**
     * One DMA for what pinned covers, into dst (which starts at file offset base), so the engine's
     * queue never drains between windows; every pin is dropped whatever happens. Returns the I/O
     * failure the DMA ended with, or null; a DMA whose memory had to be set aside is thrown.
     */
    IOException transfer(List<Window.Pinned> pinned, long base, MemorySegment dst, LongConsumer progress,
                         DmaEngine.Stats dmaStats) throws DmaInFlightException {
        try {
            if (pinned.isEmpty()) return null;
            List<IommuTable.Entry> all = new ArrayList<>();
            for (Window.Pinned p : pinned) {
                all.addAll(IommuTable.window(p.entries(), vma.address() + p.start(), vma.address() + p.end(), p.start() - base));
            }
            device.engine().transfer(all, dst, progress, dmaStats);
            return null;
        } catch (DmaInFlightException x) {
            throw x;                         // its memory is set aside: no retry can use it
        } catch (IOException x) {
            return x;
        } finally {
            for (Window.Pinned p : pinned) p.window().unpin();
        }
    }

    /**
     * Tells the policy how fast a DMA that went one way only was, in wall time (per-request times
     * would flatter the I/O-bound way when copies compete for the CPU). Mixed DMAs teach nothing.
     */
    void report(DmaEngine.Stats stats, long wallNanos) {
        Transfer only = null;
        for (Transfer w : Transfer.values()) {
            if (stats.bytes[w.ordinal()].sum() == 0) continue;
            if (only != null) return;
            only = w;
        }
        if (only != null) vma.ops().observe(vma, only, stats.bytes[only.ordinal()].sum(), wallNanos);
    }

    /**
     * Lets go of every window and removes the notifiers. A window that fails to let go does not
     * stop the others; the first failure is thrown at the end, the rest suppressed in it.
     */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Throwable failure = null;
        for (Window w : windows) {
            try {
                w.notifier.remove();
                w.letGo(null);
            } catch (RuntimeException | Error x) {
                if (failure == null) failure = x; else failure.addSuppressed(x);
            }
        }
        if (failure instanceof RuntimeException r) throw r;
        if (failure instanceof Error e) throw e;
    }

    private static long roundUpPage(long v) {
        return Window.roundUpPage(v);
    }
}
