package io.mongorelay.standin;

import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.wire.MongoExceptionHandler;
import de.bwaldvogel.mongo.wire.MongoWireMessageEncoder;
import de.bwaldvogel.mongo.wire.MongoWireProtocolHandler;
import de.bwaldvogel.mongo.wire.MongoWireReplyEncoder;
import io.mongorelay.standin.auth.Users;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;

/**
 * Accepts MongoDB wire protocol connections. Built here rather than with the library's
 * MongoServer to put our CommandHandler, which runs each connection's commands on a thread of its
 * own, in the place of the library's handler.
 */
final class StandinServer {

    private final EventLoopGroup acceptor = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
    private final EventLoopGroup io = new MultiThreadIoEventLoopGroup(NioIoHandler.newFactory());
    private final DefaultThreadFactory commandThreads = new DefaultThreadFactory("mongo-standin-connection", true);
    private final MongoBackend backend;
    private final ClusterClock clock;
    private final Users users;
    private Channel listener;

    StandinServer(MongoBackend backend, ClusterClock clock, Users users) {
        this.backend = backend;
        this.clock = clock;
        this.users = users;
    }

    /**
     * Starts listening; returns the address bound (port 0 picks a free port). On failure the
     * server's threads are stopped again, so that they do not keep the process alive.
     */
    InetSocketAddress bind(String host, int port) {
        ServerBootstrap bootstrap = new ServerBootstrap()
            .group(acceptor, io)
            .channel(NioServerSocketChannel.class)
            .option(ChannelOption.SO_BACKLOG, 128)
            .childOption(ChannelOption.TCP_NODELAY, Boolean.TRUE)
            .childHandler(new ChannelInitializer<SocketChannel>() {
                @Override
                protected void initChannel(SocketChannel channel) {
                    channel.pipeline()
                        .addLast(new MongoWireReplyEncoder())
                        .addLast(new MongoWireMessageEncoder())
                        .addLast(new MongoWireProtocolHandler())
                        .addLast(new CommandHandler(backend, clock, users, commandThreads))
                        .addLast(new MongoExceptionHandler());
                }
            });
        ChannelFuture bound = bootstrap.bind(host, port).awaitUninterruptibly();
        if (!bound.isSuccess()) {
            close();
            throw new IllegalStateException("cannot listen on " + host + ":" + port + ": " + bound.cause(), bound.cause());
        }
        listener = bound.channel();
        return (InetSocketAddress) listener.localAddress();
    }

    /** Stops accepting, closes every connection and releases the threads, at once. */
    void close() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
        }
        acceptor.shutdownGracefully(0, 5, TimeUnit.SECONDS).syncUninterruptibly();
        io.shutdownGracefully(0, 5, TimeUnit.SECONDS).syncUninterruptibly();
        backend.close();
    }
}
