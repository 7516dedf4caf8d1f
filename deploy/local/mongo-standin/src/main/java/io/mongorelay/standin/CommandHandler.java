package io.mongorelay.standin;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.bson.BinData;
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.exception.MongoServerException;
import de.bwaldvogel.mongo.wire.message.ClientRequest;
import de.bwaldvogel.mongo.wire.message.MessageHeader;
import de.bwaldvogel.mongo.wire.message.MongoMessage;
import de.bwaldvogel.mongo.wire.message.MongoQuery;
import de.bwaldvogel.mongo.wire.message.MongoReply;
import io.mongorelay.standin.auth.Authentication;
import io.mongorelay.standin.auth.Users;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;

/**
 * Runs the commands of one connection against the backend, once its Authentication lets them
 * through, and writes the replies, each stamped with operationTime and $clusterTime as a replica set member stamps them (drivers gossip the
 * cluster time back, and a change stream without them cannot resume or checkpoint while idle).
 *
 * <p>Takes the place of the library's MongoDatabaseHandler, which logs every failed command with
 * a stack trace and knows nothing of cluster time. One instance per connection. Commands run, in
 * order, on a thread of the connection's own rather than on the Netty event loop: a change stream
 * getMore blocks while it waits for events, and on a shared event loop it would hold up every
 * other connection of that loop, including the writes it is waiting for.
 */
final class CommandHandler extends SimpleChannelInboundHandler<ClientRequest> {

    private static final Logger log = LoggerFactory.getLogger(CommandHandler.class);

    private final MongoBackend backend;
    private final ClusterClock clock;
    private final ExecutorService commands;
    private final Authentication authentication;
    /** Used on the commands thread only. */
    private int replyId;

    CommandHandler(MongoBackend backend, ClusterClock clock, Users users, ThreadFactory threads) {
        this.backend = backend;
        this.clock = clock;
        this.authentication = new Authentication(users);
        this.commands = Executors.newSingleThreadExecutor(threads);
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, ClientRequest request) {
        commands.execute(() -> {
            try {
                reply(ctx, request);
            } catch (Throwable t) {
                // Not a command error (those become error replies): the connection cannot go on.
                log.error("closing connection {} after an unexpected failure", ctx.channel().id(), t);
                ctx.close();
            }
        });
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        commands.execute(() -> backend.handleClose(ctx.channel()));
        commands.shutdown();
        super.channelInactive(ctx);
    }

    private void reply(ChannelHandlerContext ctx, ClientRequest request) {
        if (request instanceof MongoMessage message) {
            Document command = message.getDocument();
            Document reply = run(ctx, message.getDatabaseName(), command);
            ctx.writeAndFlush(new MongoMessage(ctx.channel(), header(request), reply));
        } else if (request instanceof MongoQuery query) {
            // OP_QUERY: drivers use it only for the first handshake command.
            Document command = query.getQuery().get("$query") instanceof Document wrapped ? wrapped : query.getQuery();
            Document reply = query.getCollectionName().equals("$cmd")
                ? run(ctx, query.getDatabaseName(), command)
                : error(new MongoServerError(352, "UnsupportedOpQueryCommand", "OP_QUERY is only supported for commands"));
            ctx.writeAndFlush(new MongoReply(header(request), reply));
        } else {
            throw new IllegalStateException("unexpected request " + request);
        }
    }

    private Document run(ChannelHandlerContext ctx, String database, Document command) {
        Document reply;
        try {
            String name = command.keySet().iterator().next();
            reply = authentication.handle(database, name, command);
            if (reply == null) {
                reply = backend.handleCommand(ctx.channel(), database, name, command);
            }
            if (name.equalsIgnoreCase("hello") || name.equalsIgnoreCase("isMaster")) {
                authentication.describeMechanisms(command, reply);
            }
        } catch (MongoServerException e) {
            reply = error(e);
        } catch (RuntimeException e) {
            log.warn("command {} on {} failed unexpectedly", command.keySet().iterator().next(), database, e);
            reply = error(new MongoServerError(1, "InternalError", "mongo-standin internal error: " + e));
        }
        BsonTimestamp clusterTime = new BsonTimestamp(clock.now());
        reply.put("operationTime", clusterTime);
        // Nobody checks the signature of an unauthenticated deployment's cluster time.
        Document signature = new Document("hash", new BinData(new byte[20])).append("keyId", 0L);
        reply.put("$clusterTime", new Document("clusterTime", clusterTime).append("signature", signature));
        return reply;
    }

    private static Document error(MongoServerException e) {
        Document reply = new Document("ok", 0.0).append("errmsg", e.getMessageWithoutErrorCode());
        if (e instanceof MongoServerError error) {
            reply.append("code", error.getCode());
            reply.putIfNotNull("codeName", error.getCodeName());
        }
        if (e instanceof LabeledError labeled) {
            reply.append("errorLabels", labeled.labels());
        }
        return reply;
    }

    private MessageHeader header(ClientRequest request) {
        return new MessageHeader(++replyId, request.getHeader().getRequestID());
    }
}
