package io.directmap;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Several reads of one mapping, added one by one and submitted together, in the manner of cuFile's
 * batch API: each read has its own future, and {@link #submit} returns one for all of them.
 * Nothing starts before submit; then the reads run as {@link FileMapping#readAsync} runs them, at
 * most the device's queue depth at once. A read that fails fails its own future (with what the
 * synchronous read would throw) and the batch's; the other reads go on and keep their results.
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
     * fails with the first failure (in that order) once every read has ended.
     *
     * @return the future of every read's result
     * @throws IllegalStateException when the batch was submitted already
     */
    public CompletableFuture<List<Read>> submit() {
        if (submitted) throw new IllegalStateException("this batch of " + mapping + " was submitted already");
        submitted = true;
        List<CompletableFuture<Read>> all = new ArrayList<>();
        for (Pending p : pending) {
            mapping.readAsync(p.offset(), p.length(), p.into()).whenComplete((r, x) -> {
                if (x != null) p.result().completeExceptionally(x);
                else if (!p.result().complete(r)) r.close();   // cancelled by the caller: nobody will close it
            });
            all.add(p.result());
        }
        return CompletableFuture.allOf(all.toArray(CompletableFuture[]::new))
                .thenApply(v -> all.stream().map(CompletableFuture::join).toList());
    }
}
