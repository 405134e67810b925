package io.directmap.serve;

import io.directmap.device.SoftwareDevice;
import io.directmap.mm.AddressSpace;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.handler.timeout.WriteTimeoutHandler;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * {@code dmap serve}: an HTTP/1.1 file server whose bytes go through a NIC importer
 * ({@link NicImporter}). Netty does the protocol (its HTTP codec parses requests, with limits on
 * the request line, headers and body); every response is served on a worker thread of its
 * connection, so the event loops never wait for the block device.
 *
 * <p>Limits: at most {@link ServeOptions#maxConnections()} connections (the next one gets 503 and
 * is closed); a request line of 8 KiB, headers of 16 KiB and a body of 64 KiB (more is 400 or 413);
 * 32 pipelined requests per connection; two windows of NIC memory per connection; a client that
 * takes no bytes for the write timeout is disconnected, and one that holds a change to a file back
 * for longer than the hold bound is reset (see {@link ServedFile}).
 */
public final class FileServer implements AutoCloseable {
    private static final byte[] BUSY = ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 34\r\n"
            + "Connection: close\r\n\r\n503: too many connections; retry\r\n\r\n").getBytes(StandardCharsets.US_ASCII);

    private final ServeOptions options;
    private final Resolver resolver;
    private final NicImporter nic;
    private final Meter meter = new Meter();
    private final AccessLog accessLog;
    // Platform threads (a window read blocks in a native call, which would pin a virtual thread's
    // carrier), kept 30 s for the next request: one a connection at most, so the connection limit bounds them.
    /** Connections whose NIC memory is not given back yet (a connection leaves once it freed it). */
    final java.util.Set<Connection> holdingMemory = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private final ExecutorService workers = Executors.newCachedThreadPool(Thread.ofPlatform().daemon().name("dmap-serve-", 0).factory());
    private final boolean epoll;
    private final EventLoopGroup boss, loops;
    private final Channel listening;

    private FileServer(ServeOptions options, AddressSpace space, SoftwareDevice device, Path accessLogFile) throws IOException {
        this.options = options;
        this.resolver = new Resolver(options.root());
        this.nic = new NicImporter(space, device, options.hold());
        this.accessLog = accessLogFile == null ? null : new AccessLog(accessLogFile);
        this.epoll = Epoll.isAvailable();
        IoHandlerFactory io = epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
        Class<? extends ServerChannel> type = epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
        this.boss = new MultiThreadIoEventLoopGroup(1, io);
        this.loops = new MultiThreadIoEventLoopGroup(Math.max(2, Runtime.getRuntime().availableProcessors()), io);
        ServerBootstrap b = new ServerBootstrap().group(boss, loops).channel(type)
                .option(ChannelOption.SO_BACKLOG, 1024)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        if (meter.connections.incrementAndGet() > options.maxConnections()) {
                            meter.connections.decrementAndGet();
                            meter.refusedConnections.incrementAndGet();
                            ch.pipeline().addLast(new ChannelInboundHandlerAdapter() {
                                @Override
                                public void channelActive(ChannelHandlerContext ctx) {
                                    ctx.writeAndFlush(Unpooled.wrappedBuffer(BUSY)).addListener(ChannelFutureListener.CLOSE);
                                }
                            });
                            return;
                        }
                        ch.pipeline().addLast(
                                new IdleStateHandler(options.idleTimeout().toSeconds(), 0, 0, TimeUnit.SECONDS),
                                new WriteTimeoutHandler(options.writeTimeout().toSeconds(), TimeUnit.SECONDS),
                                new HttpServerCodec(new HttpDecoderConfig().setMaxInitialLineLength(8192).setMaxHeaderSize(16384)),
                                new HttpObjectAggregator(64 << 10),
                                new Connection(FileServer.this));
                    }
                });
        try {
            this.listening = b.bind(options.bind(), options.port()).syncUninterruptibly().channel();
        } catch (RuntimeException e) {
            close();
            throw new IOException("cannot listen on " + options.bind().getHostAddress() + ":" + options.port() + ": " + e.getMessage()
                    + "; give another --port or --bind", e);
        }
    }

    /**
     * Starts serving options.root() on options.bind():options.port().
     *
     * @param options what and where to serve
     * @param space the address space files are mapped in
     * @param nic the NIC importer's device (kept open by the caller until this is closed)
     * @param accessLog a file to append the Common Log Format lines to, or null
     * @return the server; close it to stop
     * @throws IOException when the directory cannot be opened or the port is taken
     */
    public static FileServer start(ServeOptions options, AddressSpace space, SoftwareDevice nic, Path accessLog) throws IOException {
        return new FileServer(options, space, nic, accessLog);
    }

    /** {@return the port it listens on (the one picked, for port 0)} */
    public int port() {
        return ((InetSocketAddress) listening.localAddress()).getPort();
    }

    /** {@return "epoll" or "nio"} */
    public String transport() { return epoll ? "epoll" : "nio"; }

    /** {@return the line for the second since the last call (see {@link Meter})} */
    public String statsLine() { return meter.line(); }

    /** {@return responses cut off or reset so far} */
    public long cutResponses() { return meter.cut.sum(); }

    ServeOptions options() { return options; }
    Resolver resolver() { return resolver; }
    NicImporter nic() { return nic; }
    Meter meter() { return meter; }
    AccessLog accessLog() { return accessLog; }
    ExecutorService workers() { return workers; }

    /** Whether this connection gets page-cache windows with sendfile ({@link ServeOptions.Sendfile}). */
    boolean sendfileTo(Connection c) {
        return switch (options.sendfile()) {
            case ALWAYS -> true;
            case NEVER -> false;
            case AUTO -> epoll && !c.loopbackPeer();
        };
    }

    /**
     * Stops listening, closes every connection (responses in flight end cut off), waits for the
     * workers, unmaps every served file, and closes the directory and the access log.
     */
    @Override
    public void close() throws IOException {
        try {
            if (listening != null) listening.close().syncUninterruptibly();
            boss.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
            loops.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
            workers.shutdown();
            workers.close();
            // Every channel is closed and no worker runs now, but a connection's channelInactive may
            // not have run before its event loop stopped: what it still holds is given back here, so
            // close() returns with every connection's NIC memory free.
            for (Connection c : holdingMemory) c.serverClosed();
            nic.close();
        } finally {
            try {
                resolver.close();
            } finally {
                if (accessLog != null) accessLog.close();
            }
        }
    }
}
