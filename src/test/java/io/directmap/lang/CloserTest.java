package io.directmap.lang;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Every close runs; the first failure is thrown with every later one suppressed in it, in order. */
class CloserTest {
    private final List<String> closed = new ArrayList<>();

    private Closer.Step<IOException> failing(String name, IOException e) {
        return () -> {
            closed.add(name);
            throw e;
        };
    }

    private Closer.Step<IOException> fine(String name) {
        return () -> closed.add(name);
    }

    @Test
    void everyStepRunsAndTheFirstFailureCarriesTheOthersInOrder() {
        IOException a = new IOException("a"), c = new IOException("c"), d = new IOException("d");
        Closer<IOException> closer = Closer.keeping(IOException.class);
        closer.run(failing("a", a));
        closer.run(fine("b"));
        closer.run(failing("c", c));
        closer.run(failing("d", d));
        IOException thrown = assertThrows(IOException.class, closer::throwIfFailed);
        assertSame(a, thrown);
        assertArrayEquals(new Throwable[] {c, d}, thrown.getSuppressed());
        assertEquals(List.of("a", "b", "c", "d"), closed);
    }

    @Test
    void closeAllClosesEachItemInIterationOrder() {
        List<IOException> failures = List.of(new IOException("1"), new IOException("2"), new IOException("3"));
        IOException thrown = assertThrows(IOException.class, () -> Closer.closeAll(IOException.class, List.of(0, 1, 2),
                i -> {
                    closed.add("item " + i);
                    throw failures.get(i);
                }));
        assertSame(failures.get(0), thrown);
        assertArrayEquals(new Throwable[] {failures.get(1), failures.get(2)}, thrown.getSuppressed());
        assertEquals(List.of("item 0", "item 1", "item 2"), closed);
    }

    @Test
    void nothingFailedThrowsNothing() {
        Closer<IOException> closer = Closer.keeping(IOException.class);
        closer.closeEach(List.of("x", "y"), closed::add);
        assertNull(closer.failure());
        assertDoesNotThrow(closer::throwIfFailed);
        assertEquals(List.of("x", "y"), closed);
    }

    @Test
    void anUncheckedFailureStopsNoLaterStepAndIsThrownAsItWas() {
        IllegalStateException bug = new IllegalStateException("a notifier did not let go");
        IOException io = new IOException("b");
        Closer<IOException> closer = Closer.keeping(IOException.class);
        closer.run(() -> {
            throw bug;
        });
        closer.run(failing("b", io));
        closer.run(fine("c"));
        assertEquals(List.of("b", "c"), closed, "every step after the unchecked failure ran");
        assertSame(bug, closer.failure());
        assertSame(bug, assertThrows(IllegalStateException.class, closer::throwIfFailed));
        assertArrayEquals(new Throwable[] {io}, bug.getSuppressed());
    }

    @Test
    void anErrorIsKeptAndThrownAsAnError() {
        OutOfMemoryError oom = new OutOfMemoryError("unable to create native thread");
        Closer<IOException> closer = Closer.keeping(IOException.class);
        closer.run(failing("a", new IOException("a")));
        closer.run(() -> {
            throw oom;
        });
        IOException thrown = assertThrows(IOException.class, closer::throwIfFailed);
        assertArrayEquals(new Throwable[] {oom}, thrown.getSuppressed());
    }

    @Test
    void aSubtypeOfTheKeptTypeIsKept() {
        class Sub extends IOException {}
        Sub first = new Sub();
        Closer<IOException> closer = Closer.keeping(IOException.class);
        closer.run(() -> {
            throw first;
        });
        assertSame(first, closer.failure());
    }
}
