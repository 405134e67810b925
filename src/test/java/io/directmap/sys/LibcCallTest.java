package io.directmap.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Libc.call returns (result, errno) in one long; Libc.check turns a failure into the SysException. */
class LibcCallTest {
    @TempDir Path dir;

    @Test
    void aFailedCallReturnsMinusTheErrnoCapturedWithIt() throws Exception {
        // kill(2) of a pid that cannot exist: ESRCH (3), captured with the call.
        long rc = Libc.call(s -> (int) SignalsHandle.KILL.invokeExact(s, Integer.MAX_VALUE, 0));
        assertEquals(-3, rc);
    }

    @Test
    void aSuccessfulCallReturnsItsResult() throws Exception {
        long rc = Libc.call(s -> (int) SignalsHandle.KILL.invokeExact(s, (int) ProcessHandle.current().pid(), 0));
        assertEquals(0, rc);
    }

    @Test
    void checkNamesTheCallTheTargetTheErrnoAndTheHint() {
        SysException e = assertThrows(SysException.class, () -> Libc.check("kill 0", "pid " + Integer.MAX_VALUE,
                "check the pid", s -> (int) SignalsHandle.KILL.invokeExact(s, Integer.MAX_VALUE, 0)));
        assertEquals("kill 0", e.call());
        assertEquals("pid " + Integer.MAX_VALUE, e.target());
        assertEquals("ESRCH", e.errnoName());
        assertEquals("kill 0(pid 2147483647) failed: ESRCH (No such process); check the pid", e.getMessage());
    }

    @Test
    void aSysExceptionFromInsideTheCallGoesThrough() throws Exception {
        FileHandle h = FileHandle.openReadWrite(dir.resolve("f"));
        h.close();
        SysException closed = assertThrows(SysException.class, h::fsync);
        assertEquals(Errno.EBADF, closed.errno());
        assertTrue(closed.getMessage().contains("the handle was closed"), closed.getMessage());
    }

    @Test
    void anythingElseADowncallThrowsIsABug() {
        IllegalStateException wrong = new IllegalStateException("wrong handle shape");
        AssertionError e = assertThrows(AssertionError.class, () -> Libc.call(s -> {
            throw wrong;
        }));
        assertSame(wrong, e.getCause());
    }

    /** kill(2) bound as Signals binds it: (state, pid_t, int)int. */
    private static final class SignalsHandle {
        static final java.lang.invoke.MethodHandle KILL = Libc.errnoHandle("kill",
                java.lang.foreign.FunctionDescriptor.of(java.lang.foreign.ValueLayout.JAVA_INT,
                        java.lang.foreign.ValueLayout.JAVA_INT, java.lang.foreign.ValueLayout.JAVA_INT));
    }
}
