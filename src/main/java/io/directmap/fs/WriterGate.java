package io.directmap.fs;

import io.directmap.mm.Invalidation;
import io.directmap.mm.Refusal;
import io.directmap.sys.Errno;
import io.directmap.sys.SysException;
import java.util.List;
import java.util.Optional;

/**
 * Holds other processes' writers back while a file has device mappings (a read lease on its
 * descriptor), takes every mapping back when the lease breaks, checks it is still held before
 * bytes are delivered, and gives it back when the last mapping goes. Lease calls and the file's
 * coherence flags change together, under the file's coherence lock.
 */
final class WriterGate {
    private final MappingTracker tracker;
    private final Invalidator invalidator;

    WriterGate(MappingTracker tracker, Invalidator invalidator) {
        this.tracker = tracker;
        this.invalidator = invalidator;
    }

    /**
     * The last check before bytes of a mapping said to be coherent are delivered: does its file
     * still hold the read lease (F_GETLEASE)? A lease being broken already reports F_UNLCK, so a
     * writer that is waiting, or was let go by the kernel after lease-break-time, is seen here even
     * if its break has not reached the importer yet. Then every mapping through that lease is taken
     * back now (the break's own handler finds nothing left to do) and the read is done again.
     */
    boolean leaseStillHeld(FileMapping m) {
        OpenFile file = m.file();
        if (leases().held(file.handle())) return true;
        if (!m.isLive()) return false;
        invalidator.invalidateLogging(file.path(), mappingsOf(file), Invalidation.of(0, Long.MAX_VALUE, Invalidation.Cause.WRITE_OPEN,
                "the read lease is no longer held (fcntl F_GETLEASE): another process opened it for writing or truncated it; "
                        + "what was read meanwhile is read again", false));
        return false;
    }

    /** The live mappings made through this open file (and so through its lease). */
    private List<FileMapping> mappingsOf(OpenFile file) {
        return tracker.overlapping(file, 0, Long.MAX_VALUE).stream().filter(x -> x.file() == file).toList();
    }

    /**
     * Holds other processes' writes back for as long as mappings of file live: a read lease on its
     * descriptor. When one cannot be taken (someone has the file open for writing, or the caller
     * may not), the refusal says so and the range is not mapped directly.
     */
    Optional<Refusal> holdWriters(OpenFile file) {
        // Lease calls happen under the file's lock, so the flag and the kernel's lease never disagree.
        synchronized (file.coherence) {
            if (file.coherence.leaseHeld) return Optional.empty();
            if (file.coherence.breaking) {
                return Optional.of(new Refusal(FsReason.OPEN_FOR_WRITE, file.path()
                        + " is being opened for writing elsewhere; the devices are letting go"));
            }
            try {
                // A file opened for device writes holds a write lease: every other open waits, readers too.
                if (file.writable()) leases().takeWrite(file.handle(), h -> leaseBroken(file));
                else leases().take(file.handle(), h -> leaseBroken(file));
            } catch (SysException e) {
                if (e.errno() == Errno.EAGAIN && file.writable()) {
                    return Optional.of(new Refusal(FsReason.OPEN_ELSEWHERE, file.path()
                            + " is open through another descriptor, or has another lease on it (fuser -v, /proc/locks); no write lease can be taken"));
                }
                if (e.errno() == Errno.EAGAIN) {
                    return Optional.of(new Refusal(FsReason.OPEN_FOR_WRITE, file.path()
                            + " is open for writing elsewhere (fuser -v shows by whom); no lease can be taken"));
                }
                return Optional.of(new Refusal(FsReason.NO_LEASE, "read lease on " + file.path() + ": " + e.shortReason()));
            }
            file.coherence.leaseHeld = true;
            return Optional.empty();
        }
    }

    /**
     * Between two pinned stretches of a write: while the file's lease is being broken (the kernel
     * already reports it broken, F_GETLEASE, or the lease thread is taking the mappings back), wait
     * until the break is through and the other process went on, at most BREAK_WAIT. Otherwise a
     * write that pins its next stretch as soon as it let go of the last keeps one step ahead of the
     * invalidation, and the other process waits for the whole write (or, past lease-break-time, the
     * kernel lets it go while the device still writes). A lease lost without a break (no one
     * answered it) is not waited for: the write's verify takes its mappings back.
     */
    void awaitBreak(OpenFile file) {
        long deadline = System.nanoTime() + BREAK_WAIT_NANOS;
        while (System.nanoTime() < deadline) {
            boolean breaking;
            synchronized (file.coherence) {
                breaking = file.coherence.breaking || (file.coherence.leaseHeld && !leases().held(file.handle()));
            }
            if (!breaking) return;
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** The longest a write waits for a lease break to go through (the signal reaching the lease thread, the devices letting go). */
    private static final long BREAK_WAIT_NANOS = 2_000_000_000L;

    /** On the lease thread: another process is waiting in open() or truncate() until the devices let go. */
    private void leaseBroken(OpenFile file) {
        synchronized (file.coherence) {
            file.coherence.seq++;
            file.coherence.leaseHeld = false;
            file.coherence.breaking = true;
        }
        try {
            invalidator.invalidateLogging(file.path(), mappingsOf(file),
                    Invalidation.of(0, Long.MAX_VALUE, Invalidation.Cause.WRITE_OPEN,
                            "another process opened it for writing or truncated it (lease break); it waited for the devices", true));
        } finally {
            synchronized (file.coherence) {
                leases().release(file.handle());
                file.coherence.breaking = false;
            }
        }
    }

    private static io.directmap.sys.Leases leases() {
        try {
            return io.directmap.sys.Leases.shared();
        } catch (SysException e) {
            throw new IllegalStateException("the lease thread did not start: " + e.getMessage(), e);
        }
    }

    /** A mapping of file was released: when it was the last, writers go freely again. */
    void mappingGone(OpenFile file) {
        synchronized (file.coherence) {
            if (--file.coherence.liveMappings == 0 && file.coherence.leaseHeld) {
                // Nothing mapped through this file any more: let writers go freely.
                leases().release(file.handle());
                file.coherence.leaseHeld = false;
                file.coherence.seq++;
            }
        }
    }
}
