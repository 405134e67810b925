package io.directmap.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * A TCP socket's send queue, SIOCOUTQ (tcp(7), {@code <asm-generic/ioctls.h>} TIOCOUTQ 0x5411): the
 * bytes written to the socket that the peer has not acknowledged yet. Bytes handed over with
 * sendfile(2) stay pages of the page cache until then, so a file's change must not be let through
 * while this is above zero.
 */
public final class SocketQueue {
    private static final long SIOCOUTQ = 0x5411;

    // (state, int fd, unsigned long request, ...int*)int
    private static final MethodHandle IOCTL = Libc.errnoHandle("ioctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), Linker.Option.firstVariadicArg(2));

    private SocketQueue() {}

    /**
     * The bytes not yet acknowledged by the peer.
     *
     * @param socketFd a connected TCP socket's descriptor (one the caller keeps open meanwhile)
     * @return the bytes
     * @throws SysException EBADF or ENOTTY when fd is not an open socket
     */
    public static int unacknowledged(int socketFd) throws SysException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            Libc.check("ioctl SIOCOUTQ", "socket fd " + socketFd, "", s -> (int) IOCTL.invokeExact(s, socketFd, SIOCOUTQ, out));
            return out.get(JAVA_INT, 0);
        }
    }
}
