package io.directmap.serve;

import io.directmap.device.DeviceMemory;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOption;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.unix.UnixChannel;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.timeout.IdleState;
import io.netty.handler.timeout.IdleStateEvent;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;

/**
 * One client connection: its requests in the order they came (HTTP/1.1 pipelining), served one at
 * a time on a worker thread of their own (reading a window blocks on the block device; Netty's event
 * loop never does), and its two windows of NIC memory, allocated on its first body and given back
 * when it closes. The exception: a request that arrives with nothing of the connection in flight,
 * for a small file already mapped through the page cache, is served on the event loop itself
 * ({@link Exchange#serveOnLoop}: a pread from the page cache, no block device read, no wait).
 */
final class Connection extends SimpleChannelInboundHandler<FullHttpRequest> implements ServedFile.Sender {
    /** Requests one connection may have waiting (pipelined) before it is closed. */
    static final int MOST_QUEUED = 32;

    private final FileServer server;
    private volatile Channel channel;
    private final ArrayDeque<FullHttpRequest> queue = new ArrayDeque<>();   // guarded by this
    private boolean running;                                               // guarded by this: a worker drains the queue
    private boolean closed;                                                // guarded by this
    private DeviceMemory.Buffer[] buffers;                                 // guarded by this

    Connection(FileServer server) {
        this.server = server;
        server.holdingMemory.add(this);
    }

    /** The server closed (its event loops and workers have stopped): gives back what is still held. */
    synchronized void serverClosed() {
        closed = true;
        for (FullHttpRequest r : queue) r.release();
        queue.clear();
        freeBuffers();
    }

    Channel channel() { return channel; }

    String host() {
        return channel.remoteAddress() instanceof InetSocketAddress a ? a.getAddress().getHostAddress() : "-";
    }

    boolean loopbackPeer() {
        return channel.remoteAddress() instanceof InetSocketAddress a && a.getAddress().isLoopbackAddress();
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
        channel = ctx.channel();
        super.channelActive(ctx);
    }

    /** The last write of a response written on the event loop, or null: its NIC memory is in use until it is done. */
    private volatile ChannelFuture pending;

    ChannelFuture pending() { return pending; }

    void pending(ChannelFuture f) { pending = f; }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest request) {
        boolean start;
        synchronized (this) {
            if (closed) return;
            ChannelFuture p = pending;
            if (!running && queue.isEmpty() && (p == null || p.isDone())) {
                // Nothing of this connection in flight: a hot small file is served right here (no worker hop).
                boolean done;
                try {
                    done = new Exchange(server, this, request).serveOnLoop();
                } catch (RuntimeException e) {
                    done = false;
                }
                if (done) return;
            }
            if (queue.size() >= MOST_QUEUED) {
                ctx.close();
                return;
            }
            queue.add(request.retain());
            start = !running;
            running = true;
        }
        if (start) server.workers().execute(this::drain);
    }

    /** On the worker: serves queued requests until none is left or the connection is gone. */
    private void drain() {
        while (true) {
            FullHttpRequest r;
            synchronized (this) {
                r = closed ? null : queue.poll();
                if (r == null) {
                    running = false;
                    if (closed) freeBuffers();
                    return;
                }
            }
            boolean goOn;
            try {
                goOn = new Exchange(server, this, r).serve();
            } catch (RuntimeException | Error e) {
                System.getLogger("io.directmap.serve").log(System.Logger.Level.WARNING, "serving " + r.uri() + " failed", e);
                goOn = false;
            } finally {
                r.release();
            }
            if (!goOn) channel.close().awaitUninterruptibly();
        }
    }

    /** The connection's two windows of NIC memory (allocated on first use). */
    synchronized DeviceMemory.Buffer[] buffers() throws IOException {
        if (buffers == null) {
            long chunk = server.options().chunkBytes();
            DeviceMemory.Buffer a = server.nic().allocate("window of " + host(), chunk);
            try {
                buffers = new DeviceMemory.Buffer[] {a, server.nic().allocate("window of " + host(), chunk)};
            } catch (IOException | RuntimeException e) {
                a.close();
                throw e;
            }
        }
        return buffers;
    }

    /** Called holding this, once the channel is closed (so Netty holds no write of them) and no worker runs. */
    private void freeBuffers() {
        server.holdingMemory.remove(this);
        if (buffers == null) return;
        for (DeviceMemory.Buffer b : buffers) b.close();
        buffers = null;
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        synchronized (this) {
            closed = true;
            for (FullHttpRequest r : queue) r.release();
            queue.clear();
            if (!running) freeBuffers();
        }
        server.meter().connections.decrementAndGet();
        super.channelInactive(ctx);
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
        if (evt instanceof IdleStateEvent e && e.state() == IdleState.READER_IDLE) {
            synchronized (this) {
                if (running || !queue.isEmpty()) return;   // busy sending: the write timeout watches that
            }
            ctx.close();
            return;
        }
        super.userEventTriggered(ctx, evt);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        // A reset by the peer, a write timeout: the connection ends; the server goes on.
        ctx.close();
    }

    @Override
    public void reset(String why) {
        Channel ch = channel;
        if (ch == null || !ch.isOpen()) return;
        server.meter().cut.increment();
        // SO_LINGER 0: close sends a reset and throws away what the socket still holds.
        ch.eventLoop().execute(() -> {
            if (!ch.isOpen()) return;
            try {
                ch.config().setOption(ChannelOption.SO_LINGER, 0);
            } catch (io.netty.channel.ChannelException e) {
                // closed meanwhile: nothing left in it to throw away
            }
            ch.close();
        });
        ch.closeFuture().awaitUninterruptibly(1_000);
    }

    @Override
    public int socketFd() {
        Channel ch = channel;
        if (ch instanceof UnixChannel u && ch.isOpen()) {
            return u.fd().isOpen() ? u.fd().intValue() : -1;
        }
        return -1;
    }
}
