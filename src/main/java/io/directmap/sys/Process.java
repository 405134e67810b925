package io.directmap.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.FunctionDescriptor;
import java.lang.invoke.MethodHandle;

/** Facts about this process: its effective user, the page size. */
public final class Process {
    private static final MethodHandle GETEUID = Libc.plainHandle("geteuid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle GETPAGESIZE = Libc.plainHandle("getpagesize", FunctionDescriptor.of(JAVA_INT));

    public static final int PAGE_SIZE = pageSize();

    private Process() {}

    public static int effectiveUid() {
        try {
            return (int) GETEUID.invokeExact();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    public static boolean isRoot() {
        return effectiveUid() == 0;
    }

    private static int pageSize() {
        try {
            return (int) GETPAGESIZE.invokeExact();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }
}
