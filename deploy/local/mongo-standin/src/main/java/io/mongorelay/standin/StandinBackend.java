package io.mongorelay.standin;

import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.ObjectId;
import de.bwaldvogel.mongo.wire.BsonConstants;
import de.bwaldvogel.mongo.wire.MongoWireProtocolHandler;
import io.netty.channel.Channel;
import io.netty.util.AttributeKey;

/**
 * The library's in-memory backend, presenting itself as the primary of a one-member replica set
 * running MongoDB 6.0 (the deployment kind change streams need), and refusing plainly what it
 * cannot do (see {@link Refusals}).
 *
 * <p>The memory backend, not the H2 one: change capture (see BoundedOplogBackend) hooks into its
 * collections, and nothing here needs data to outlive the process.
 */
public class StandinBackend extends MemoryBackend {

    /** The replica set name in the handshake; clients may connect with replicaSet=rs0. */
    private static final String REPLICA_SET = "rs0";

    private static final ObjectId ELECTION_ID = new ObjectId("7fffffff0000000000000001");

    /** The client's appName, from the first handshake of its connection. */
    private static final AttributeKey<String> APP_NAME = AttributeKey.valueOf("mongo-standin.appName");

    public StandinBackend() {
        version(new ReportedVersion());
    }

    @Override
    public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
        if (command.equalsIgnoreCase("hello") || command.equalsIgnoreCase("isMaster")) {
            return hello(channel, command, query);
        }
        Refusals.check(command, query);
        Document reply = command.equalsIgnoreCase("find")
            ? isolatedFind(channel, databaseName, query)
            : super.handleCommand(channel, databaseName, command, query);
        if (command.equalsIgnoreCase("find") || command.equalsIgnoreCase("aggregate")
            || command.equalsIgnoreCase("getMore")) {
            ReplyBatchCap.apply(reply, getCursorRegistry());
        }
        return reply;
    }

    /**
     * Runs a find under its collection's monitor, which every write holds while it changes a
     * document and records it in the oplog, and answers copies of the first batch's documents.
     * A read then shows a write only together with its oplog entry, so the operationTime of its
     * reply, or of any later one, is at or after the cluster time of every change it shows, as a
     * real server's snapshot reads are (an incremental snapshot's high watermark relies on it).
     * The library reads without the monitor, and answers the stored documents themselves, which
     * an update changes in place, maybe while the reply is being encoded.
     */
    private Document isolatedFind(Channel channel, String databaseName, Document query) {
        Object collection = query.get("find") instanceof String name
            ? resolveDatabase(databaseName).resolveCollection(name, false) : null;
        if (collection == null) {
            return super.handleCommand(channel, databaseName, "find", query);
        }
        synchronized (collection) {
            Document reply = super.handleCommand(channel, databaseName, "find", query);
            if (reply.get("cursor") instanceof Document cursor && cursor.get("firstBatch") instanceof List<?> batch) {
                List<Object> copies = new ArrayList<>(batch.size());
                for (Object document : batch) {
                    copies.add(document instanceof Document d ? d.cloneDeeply() : document);
                }
                cursor.put("firstBatch", copies);
            }
            return reply;
        }
    }

    /** The appName the connection's client sent in its handshake, or null. */
    public static String appName(Channel channel) {
        return channel.attr(APP_NAME).get();
    }

    /**
     * The handshake reply of a replica set primary. Every host field names the address the
     * client reached, so the set is consistent whether it connects directly or by set name.
     * No topologyVersion: that would invite the streaming (exhaust) protocol, which the
     * library's wire decoder does not support.
     */
    private Document hello(Channel channel, String command, Document query) {
        // Only a connection's first handshake carries client metadata; later ones (monitoring) do not.
        if (query.get("client") instanceof Document client && client.get("application") instanceof Document app
            && app.get("name") instanceof String name) {
            channel.attr(APP_NAME).set(name);
        }
        InetSocketAddress local = (InetSocketAddress) channel.localAddress();
        String me = local.getAddress().getHostAddress() + ":" + local.getPort();
        Document reply = new Document()
            .append(command.equals("hello") ? "isWritablePrimary" : "ismaster", Boolean.TRUE);
        if (Utils.isTrue(query.get("helloOk"))) {
            reply.append("helloOk", Boolean.TRUE);
        }
        reply.append("hosts", List.of(me))
            .append("setName", REPLICA_SET)
            .append("setVersion", 1)
            .append("secondary", Boolean.FALSE)
            .append("primary", me)
            .append("me", me)
            .append("electionId", ELECTION_ID)
            .append("maxBsonObjectSize", BsonConstants.MAX_BSON_OBJECT_SIZE)
            .append("maxMessageSizeBytes", MongoWireProtocolHandler.MAX_MESSAGE_SIZE_BYTES)
            .append("maxWriteBatchSize", 100_000)
            .append("localTime", Instant.now())
            .append("logicalSessionTimeoutMinutes", 30)
            .append("minWireVersion", 0)
            .append("maxWireVersion", ReportedVersion.WIRE_VERSION)
            .append("readOnly", Boolean.FALSE);
        Utils.markOkay(reply);
        return reply;
    }
}
