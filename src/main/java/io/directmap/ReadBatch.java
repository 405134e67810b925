package io.directmap;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Several reads of one mapping, added one by one and started together, with one future for all of
 * them: each read has its own future too. Nothing starts before {@link #submit}; then each read is
 * one {@link FileMapping#readAsync} (a task of its own on the device's reader threads, at most the
 * device's queue depth at once, each with its own transfer), so a batch saves the caller the
 * bookkeeping, not system calls. A read that fails fails its own future (with what the synchronous
 * read would throw) and the batch's; the other reads go on.
 *
 * <p>When the batch fails, the reads that succeeded keep their results and their device memory:
 * the caller gets them from their own futures and must close them. Cancelling the batch's future
 * cancels every read's future: a read not yet started does not start, and one that ends after the
 * cancel is closed as it arrives; a read whose future completed before the cancel is the caller's
 * to close, as on failure.
 *
 * <pre>{@code
 * ReadBatch batch = m.batch();
 * CompletableFuture<Read> first = batch.add(0, 1 << 20);
 * CompletableFuture<Read> second = batch.add(1 << 20, 1 << 20);
 * List<Read> both = batch.submit().join();
 * }</pre>
 *
 * A batch is submitted once and is for one thread to fill.
 */
public final class ReadBatch {
    private record Pending(long offset, long length, DeviceBuffer into, CompletableFuture<Read> result) {}

    private final FileMapping mapping;
    private final List<Pending> pending = new ArrayList<>();
    private boolean submitted;

    ReadBatch(FileMapping mapping) {
        this.mapping = mapping;
    }

    /**
     * Adds a read of [offset, offset + length) into memory the mapping allocates.
     *
     * @param offset the first file offset
     * @param length how many bytes
     * @return its future, which completes after {@link #submit()}
     * @throws IllegalStateException when the batch was submitted
     */
    public CompletableFuture<Read> add(long offset, long length) {
        return add(offset, length, null);
    }

    /**
     * Adds a read of [offset, offset + length) into into (see {@link FileMapping#read(long, long, DeviceBuffer)}).
     *
     * @param offset the first file offset
     * @param length how many bytes
     * @param into the device memory to read into, or null for memory the mapping allocates
     * @return its future, which completes after {@link #submit()}
     * @throws IllegalStateException when the batch was submitted
     */
    public CompletableFuture<Read> add(long offset, long length, DeviceBuffer into) {
        if (submitted) throw new IllegalStateException("this batch of " + mapping + " was submitted; start another with batch()");
        Pending p = new Pending(offset, length, into, new CompletableFuture<>());
        pending.add(p);
        return p.result();
    }

    /** {@return how many reads were added} */
    public int size() { return pending.size(); }

    /**
     * Starts every read added, and returns a future of all of them, in the order they were added; it
     * fails with the first failure (in that order) once every read has ended; the reads that
     * succeeded are then the caller's to close (their own futures hold them). Cancelling it cancels
     * every read's future (see the class comment).
     *
     * @return the future of every read's result
     * @throws IllegalStateException when the batch was submitted already
     */
    public CompletableFuture<List<Read>> submit() {
        if (submitted) throw new IllegalStateException("this batch of " + mapping + " was submitted already");
        submitted = true;
        List<CompletableFuture<Read>> all = new ArrayList<>();
        List<CompletableFuture<Read>> started = new ArrayList<>();
        for (Pending p : pending) {
            CompletableFuture<Read> read = mapping.readAsync(p.offset(), p.length(), p.into());
            read.whenComplete((r, x) -> {
                if (x != null) p.result().completeExceptionally(x);
                else if (!p.result().complete(r)) r.close();   // cancelled by the caller: nobody will close it
            });
            started.add(read);
            all.add(p.result());
        }
        CompletableFuture<List<Read>> batch = new CompletableFuture<>();
        CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).whenComplete((v, x) -> {
            if (x == null) batch.complete(all.stream().map(CompletableFuture::join).toList());
            else batch.completeExceptionally(x);
        });
        batch.whenComplete((v, x) -> {
            if (!batch.isCancelled()) return;
            for (CompletableFuture<Read> f : started) f.cancel(false);   // a read not started does not start
            for (CompletableFuture<Read> f : all) f.cancel(false);       // one that ends now is closed as it arrives
        });
        return batch;
    }
}
