package io.directmap.mm;

import io.directmap.lang.IntervalIndex;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A shared, read-only mapping of a whole file into this process, and the operations its owner
 * supplies (a filesystem for a file, an exporting driver for a device file). Closing it (munmap) releases every device mapping still made through it, as the
 * kernel's mmu notifier release does.
 */
public final class Vma implements AutoCloseable {
    private final MappedFile file;
    private final Arena arena;
    private final MemorySegment pages;
    private final VmOperations ops;
    private final Map<DeviceMapping, Runnable> live = new IdentityHashMap<>();
    private final Consumer<Vma> onClose;
    /** The notifiers by the file range they watch; guarded by itself, never held while one runs. */
    private final IntervalIndex<IntervalNotifier> notifiers = new IntervalIndex<>();
    private long notifiersInserted;   // under notifiers: the order they are told in is the order they came
    private final MappingOwner owner = this::invalidate;
    private boolean closed;
    private int pageCalls;           // system calls on pages running now; guarded by this

    Vma(MappedFile file, Arena arena, MemorySegment pages, VmOperations ops, Consumer<Vma> onClose) {
        this.file = file;
        this.arena = arena;
        this.pages = pages;
        this.ops = ops;
        this.onClose = onClose;
    }

    /** {@return what it maps (closed at munmap)} */
    public MappedFile file() { return file; }

    /** {@return its vm operations: where device_map on it goes} */
    public VmOperations ops() { return ops; }

    /** {@return the length of the mapping (the file's size at mmap)} */
    public long length() { return pages.byteSize(); }

    /** {@return the virtual address where the mapping starts, as a device mirroring it sees it} */
    public long address() { return pages.address(); }

    /** {@return the mapped bytes; touching them faults pages in through the page cache (what {@link VmOperations#fault} hands out)} */
    public MemorySegment pages() { return pages; }

    /**
     * mmu_interval_notifier_insert: ops is called when any part of [start, end) of the vma (file
     * offsets: the vma maps the whole file from 0) is invalidated.
     *
     * @param start the first file offset to watch
     * @param end the file offset after the last one
     * @param ops the importer's callback
     * @return the subscription: bracket reads with its readBegin and readRetry, remove it when done
     * @throws IllegalStateException when the vma is unmapped
     */
    public IntervalNotifier insertNotifier(long start, long end, IntervalNotifier.Ops ops) {
        synchronized (this) {
            if (closed) throw new IllegalStateException(this + " is unmapped");
        }
        synchronized (notifiers) {
            IntervalNotifier n = new IntervalNotifier(this, start, end, ops, notifiersInserted++);
            notifiers.add(start, end, n);
            return n;
        }
    }

    void removeNotifier(IntervalNotifier n) {
        synchronized (notifiers) {
            notifiers.remove(n.start(), n.end(), n);
        }
    }

    /** The notifiers that overlap [start, end) now, in the order they were inserted. */
    private List<IntervalNotifier> notifiers(long start, long end) {
        List<IntervalNotifier> found;
        synchronized (notifiers) {
            found = notifiers.overlapping(start, end);
        }
        return inInsertionOrder(found);
    }

    /** Every notifier now, in the order they were inserted. */
    private List<IntervalNotifier> allNotifiers() {
        List<IntervalNotifier> found;
        synchronized (notifiers) {
            found = notifiers.all();
        }
        return inInsertionOrder(found);
    }

    private static List<IntervalNotifier> inInsertionOrder(List<IntervalNotifier> found) {
        found.sort(java.util.Comparator.comparingLong(IntervalNotifier::order));
        return found;
    }

    /**
     * Whom the exporter (the filesystem, a driver) tells when it takes mappings made through this
     * vma back: the vma passes the invalidation on to every overlapping notifier and returns when
     * all have let go.
     *
     * @return the owner to give the exporter's invalidations to
     */
    public MappingOwner owner() { return owner; }

    /**
     * Passes an invalidation on to every notifier that overlaps it, and returns when all have let
     * go. Every notifier is told whatever another one throws; then the first failure is thrown with
     * the others suppressed (the file system decides what to do about an owner that did not let go).
     */
    private void invalidate(Invalidation inv) {
        RuntimeException failure = null;
        for (IntervalNotifier n : notifiers(inv.start(), inv.end())) {
            try {
                n.invalidate(inv);
            } catch (RuntimeException | Error e) {
                failure = collect(failure, n + " did not let go on " + inv + ": " + e, e);
            }
        }
        if (failure != null) throw failure;
    }

    /** The first failure, with later ones suppressed. */
    private static RuntimeException collect(RuntimeException first, String message, Throwable t) {
        RuntimeException e = t instanceof RuntimeException r && first == null ? r : new IllegalStateException(message, t);
        if (first == null) return e;
        first.addSuppressed(e);
        return first;
    }

    /**
     * Drops this process's page-table entries for the whole mapping (madvise MADV_DONTNEED), as a
     * driver unpins the pages it faulted for a device; the page cache keeps them until evicted.
     *
     * @throws IOException when madvise fails (the message names the call and the errno)
     */
    public void dropPageMappings() throws IOException {
        dropPageMappings(0, pages.byteSize());
    }

    /**
     * Drops this process's page-table entries for file offsets [start, end) of the mapping (cut to
     * whole pages inside it), as a driver unpins the pages it faulted for one window of a device, so
     * that the page cache may drop them (posix_fadvise DONTNEED skips pages a process maps).
     *
     * @param start the first file offset (rounded down to a page)
     * @param end the file offset after the last one (cut to the mapping)
     * @throws IOException when madvise fails (the message names the call and the errno)
     */
    public void dropPageMappings(long start, long end) throws IOException {
        long page = io.directmap.sys.Process.PAGE_SIZE;
        long s = Math.max(0, start / page * page), e = Math.min(end, pages.byteSize());
        if (e <= s) return;
        synchronized (this) {
            if (closed) return;
            pageCalls++;
        }
        try {
            io.directmap.sys.Mmap.dropMappedPages(pages.asSlice(s, e - s));
        } finally {
            synchronized (this) {
                pageCalls--;
                notifyAll();
            }
        }
    }

    /** munmap waits for system calls on the pages (a shared arena cannot close while one runs). */
    private synchronized void awaitPageCalls() {
        io.directmap.lang.Monitors.awaitUninterruptibly(this, () -> pageCalls == 0);
    }

    /**
     * Runs release when the vma is unmapped, unless the device mapping was released first.
     *
     * @param mapping a device mapping made through this vma
     * @param release what releases it
     * @throws IllegalStateException when the vma is unmapped
     */
    public synchronized void onUnmap(DeviceMapping mapping, Runnable release) {
        if (closed) throw new IllegalStateException(this + " is unmapped");
        live.put(mapping, release);
    }

    /**
     * The device mapping was released: nothing to do for it at munmap.
     *
     * @param mapping a mapping given to {@link #onUnmap}
     */
    public synchronized void forget(DeviceMapping mapping) {
        live.remove(mapping);
    }

    /** {@return how many device mappings made through this vma are not yet released} */
    public synchronized int liveDeviceMappings() {
        return live.size();
    }

    /** {@return whether it was unmapped} */
    public synchronized boolean isClosed() { return closed; }

    /**
     * munmap: every subscriber lets go first (mmu notifier release), then what is left is released,
     * then the pages are unmapped and the file closed (which gives its lease back). Every step runs
     * whatever an earlier one threw: a notifier that throws (fault point munmap_error makes one)
     * leaves its device mappings to the releases, which retire them, free their block-device grants
     * and tracking entries, and give the lease back when the last goes. Then the first failure is
     * thrown with the others suppressed.
     */
    @Override
    public void close() throws IOException {
        List<Runnable> releases;
        synchronized (this) {
            if (closed) return;
            closed = true;
            releases = new ArrayList<>(live.values());
            live.clear();
        }
        RuntimeException failure = null;
        Invalidation unmap = Invalidation.of(0, Long.MAX_VALUE, Invalidation.Cause.UNMAPPED, "munmap of " + file.path(), true);
        for (IntervalNotifier n : allNotifiers()) {
            try {
                if (io.directmap.fault.Faults.fire(io.directmap.fault.FaultPoint.MUNMAP_ERROR)) {
                    throw new IllegalStateException("fault point munmap_error: " + n + " threw at munmap of " + file.path());
                }
                // An importer's callback that throws is told again, as a file system's invalidation does.
                Throwable t = Acknowledge.until(() -> n.invalidate(unmap));
                if (t != null) failure = collect(failure, n + " did not let go at munmap of " + file.path() + " after "
                        + Acknowledge.TRIES + " tries: " + t, t);
            } catch (RuntimeException | Error e) {
                failure = collect(failure, n + " did not let go at munmap of " + file.path() + ": " + e, e);
            }
        }
        synchronized (notifiers) {
            notifiers.clear();
        }
        for (Runnable r : releases) {
            try {
                r.run();
            } catch (RuntimeException | Error e) {
                failure = collect(failure, "releasing a device mapping at munmap of " + file.path() + " failed: " + e, e);
            }
        }
        try {
            onClose.accept(this);
        } catch (RuntimeException e) {
            failure = collect(failure, e.toString(), e);
        }
        try {
            awaitPageCalls();
            arena.close();
        } catch (RuntimeException e) {
            failure = collect(failure, "munmap of " + file.path() + " failed: " + e, e);
        }
        try {
            file.close();
        } catch (IOException e) {
            if (failure != null) e.addSuppressed(failure);
            throw e;
        }
        if (failure != null) throw failure;
    }

    @Override
    public String toString() {
        return String.format("vma 0x%x+%d of %s", address(), length(), file.path());
    }
}
