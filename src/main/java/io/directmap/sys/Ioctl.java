package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/** ioctl(2) with a pointer argument, shared by the classes that each own one kernel interface. */
final class Ioctl {
    // (state, int fd, unsigned long request, ...void*)int
    private static final MethodHandle IOCTL = Libc.errnoHandle("ioctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), Linker.Option.firstVariadicArg(2));

    private Ioctl() {}

    /** Returns the call's non-negative result (most requests return 0; LOOP_CTL_GET_FREE returns a number). */
    static int call(FileHandle file, long request, MemorySegment arg, String name, String hint) throws SysException {
        return (int) Libc.check("ioctl " + name, file.path(), hint,
                s -> (int) IOCTL.invokeExact(s, file.fd(), request, arg));
    }
}
