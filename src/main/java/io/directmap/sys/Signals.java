package io.directmap.sys;

import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.FunctionDescriptor;
import java.lang.invoke.MethodHandle;

/** kill(2) with a signal other than SIGKILL (which ProcessHandle already sends): stop and continue a process. */
public final class Signals {
    public static final int SIGCONT = 18, SIGSTOP = 19; // <asm/signal.h> on x86-64 and arm64

    // (state, pid_t, int)int
    private static final MethodHandle KILL = Libc.errnoHandle("kill", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));

    private Signals() {}

    public static void send(long pid, int signal) throws SysException {
        Libc.check("kill " + signal, "pid " + pid, "", s -> (int) KILL.invokeExact(s, (int) pid, signal));
    }
}
