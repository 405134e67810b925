package io.directmap.lang;

import java.util.Objects;

/**
 * Lets go of several things, each whatever the ones before it threw, and reports the first
 * failure with every later one suppressed in it, in order (Agrona's {@code CloseHelper.closeAll}).
 * It keeps the failures of the one type its caller names (what the closes declare, such as
 * {@code SysException}); anything else propagates at once, as it would from a plain call.
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
    private X first;

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
        } catch (Exception e) {
            keep(e);
        }
    }

    /** Closes each item in iteration order, keeping every failure. */
    public <T> void closeEach(Iterable<? extends T> items, Closing<? super T, ? extends X> closing) {
        for (T item : items) {
            try {
                closing.close(item);
            } catch (Exception e) {
                keep(e);
            }
        }
    }

    private void keep(Exception e) {
        if (!kept.isInstance(e)) {
            // A step throws only X or unchecked exceptions, so this one is unchecked: it goes on at once.
            throw (RuntimeException) e;
        }
        X x = kept.cast(e);
        if (first == null) first = x;
        else if (first != x) first.addSuppressed(x);
    }

    /** The first failure so far (later ones suppressed in it), or null. */
    public X failure() {
        return first;
    }

    /** Throws the first failure, if there was one. */
    public void throwIfFailed() throws X {
        if (first != null) throw first;
    }
}
