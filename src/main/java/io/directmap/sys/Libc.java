package io.directmap.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The one place that binds libc symbols. Every handle captures errno with the call (as
 * jdk.internal.foreign.CaptureStateUtil does), so a failure is reported as (result, errno) and
 * never read from a stale thread-local errno after the JVM has made calls of its own.
 *
 * <p>{@link #call} runs one such call and returns (result, errno) in one long, as CaptureStateUtil's
 * adapted handles do: the result when it is non-negative, else minus the errno captured with it.
 * {@link #check} is the common case, a failure that becomes a {@link SysException} at once.
 */
final class Libc {
    static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(PathElement.groupElement("errno"));

    /** One capture-state buffer per thread, so the hot path (pread) allocates nothing. */
    private static final ThreadLocal<MemorySegment> STATE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE));

    private Libc() {}

    /** A handle whose first parameter is the capture-state segment: (MemorySegment, C*)R. */
    @SuppressWarnings("restricted")   // sys is where restricted FFM calls live: -Werror fails one anywhere else
    static MethodHandle errnoHandle(String name, FunctionDescriptor descriptor, Linker.Option... more) {
        Linker.Option[] options = new Linker.Option[more.length + 1];
        options[0] = Linker.Option.captureCallState("errno");
        System.arraycopy(more, 0, options, 1, more.length);
        return LINKER.downcallHandle(symbol(name), descriptor, options);
    }

    /** A handle for functions that return their error instead of setting errno (posix_fadvise). */
    @SuppressWarnings("restricted")   // sys is where restricted FFM calls live: -Werror fails one anywhere else
    static MethodHandle plainHandle(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        return LINKER.downcallHandle(symbol(name), descriptor, options);
    }

    private static MemorySegment symbol(String name) {
        return LINKER.defaultLookup().find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol " + name));
    }

    /** This thread's capture-state buffer; pass it as the first argument of an errno handle. */
    static MemorySegment state() {
        return STATE.get();
    }

    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /**
     * One call through an errno handle, given this thread's capture-state segment; returns the C
     * result widened to long (an address as {@link MemorySegment#address()}: MAP_FAILED is -1).
     */
    @FunctionalInterface
    interface Downcall {
        long invoke(MemorySegment state) throws Throwable;
    }

    /**
     * Runs call and returns its result, or minus the errno captured with it when the result is
     * negative (libc's -1). A SysException the call throws (a closed handle's EBADF) goes through;
     * anything else a downcall throws is a wrong handle shape, a bug.
     */
    static long call(Downcall call) throws SysException {
        try {
            MemorySegment state = STATE.get();
            long rc = call.invoke(state);
            return rc < 0 ? -errno(state) : rc;
        } catch (SysException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** {@link #call}, failing with SysException(name, target, errno, hint); returns the non-negative result. */
    static long check(String name, String target, String hint, Downcall call) throws SysException {
        long rc = call(call);
        if (rc < 0) throw new SysException(name, target, (int) -rc, hint);
        return rc;
    }
}
