package io.directmap.lang;

import java.util.Objects;

/**
 * Lets go of several things, each whatever the ones before it threw, and reports the first
 * failure with every later one suppressed in it, in order (Agrona's {@code CloseHelper.closeAll}).
 * Every step runs whatever an earlier one threw, checked or not: an unchecked exception or an
 * error of one close (a notifier that did not let go, an arena still in use) must not leak what
 * the later closes give back. The first failure is thrown at the end as it was thrown: the type
 * the caller names (what the closes declare, such as {@code SysException}), or unchecked.
 *
 * <pre>{@code
 * Closer<SysException> closer = Closer.keeping(SysException.class);
 * closer.closeEach(files, OpenFile::close);
 * files.clear();
 * closer.throwIfFailed();
 * }</pre>
 *
 * Not thread-safe: one closer serves one close.
 */
public final class Closer<X extends Exception> {
    /** One close, or any step that lets go of something. */
    @FunctionalInterface
    public interface Step<X extends Exception> {
        void run() throws X;
    }

    /** How each item of a collection is let go of. */
    @FunctionalInterface
    public interface Closing<T, X extends Exception> {
        void close(T item) throws X;
    }

    private final Class<X> kept;
    private Throwable first;

    private Closer(Class<X> kept) {
        this.kept = Objects.requireNonNull(kept);
    }

    /** A closer that keeps failures of type kept. */
    public static <X extends Exception> Closer<X> keeping(Class<X> kept) {
        return new Closer<>(kept);
    }

    /** Closes every item, in iteration order, then throws the first failure with the later ones suppressed. */
    public static <T, X extends Exception> void closeAll(Class<X> kept, Iterable<? extends T> items,
                                                         Closing<? super T, ? extends X> closing) throws X {
        Closer<X> closer = keeping(kept);
        closer.closeEach(items, closing);
        closer.throwIfFailed();
    }

    /** Runs step; its failure becomes the first, or is suppressed in the first. */
    public void run(Step<? extends X> step) {
        try {
            step.run();
        } catch (Throwable t) {
            keep(t);
        }
    }

    /** Closes each item in iteration order, keeping every failure. */
    public <T> void closeEach(Iterable<? extends T> items, Closing<? super T, ? extends X> closing) {
        for (T item : items) {
            try {
                closing.close(item);
            } catch (Throwable t) {
                keep(t);
            }
        }
    }

    private void keep(Throwable t) {
        if (first == null) first = t;
        else if (first != t) first.addSuppressed(t);
    }

    /** The first failure so far (later ones suppressed in it), or null. */
    public Throwable failure() {
        return first;
    }

    /**
     * Throws the first failure, if there was one: as X when it is one, else as the unchecked
     * exception or error it was (a step throws nothing else).
     */
    public void throwIfFailed() throws X {
        if (first == null) return;
        if (kept.isInstance(first)) throw kept.cast(first);
        if (first instanceof RuntimeException r) throw r;
        if (first instanceof Error e) throw e;
        throw new IllegalStateException("a close step threw a checked " + first, first);
    }
}
