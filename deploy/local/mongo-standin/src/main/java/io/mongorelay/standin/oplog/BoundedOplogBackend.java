package io.mongorelay.standin.oplog;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.backend.Cursor;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import de.bwaldvogel.mongo.bson.Document;
import io.mongorelay.standin.ClusterClock;
import io.mongorelay.standin.StandinBackend;
import io.netty.channel.Channel;

/**
 * The stand-in backend with its own oplog (--oplog bounded): collections record their writes in
 * a {@link BoundedOplog}, and change streams are served from it instead of the library's oplog,
 * which stores entries in a collection that is rescanned and sorted on every read and never
 * truncated.
 */
public final class BoundedOplogBackend extends StandinBackend {

    private final BoundedOplog oplog;
    private final ChangeStreams changeStreams;

    public BoundedOplogBackend(ClusterClock clock, int maxEntries) {
        this.oplog = new BoundedOplog(clock, maxEntries);
        this.changeStreams = new ChangeStreams(oplog, getCursorRegistry(), this::currentDocument);
    }

    @Override
    public MemoryDatabase openOrCreateDatabase(String databaseName) {
        return new CapturingDatabase(databaseName, getCursorRegistry(), oplog);
    }

    @Override
    public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
        if (command.equalsIgnoreCase("aggregate") && ChangeStreamRequest.isChangeStream(query)) {
            return changeStreams.open(databaseName, query, appName(channel));
        }
        if (command.equalsIgnoreCase("aggregate") && databaseName.equals("admin") && CurrentOp.isCurrentOp(query)) {
            return CurrentOp.run(query, changeStreams.openCursors());
        }
        return super.handleCommand(channel, databaseName, command, query);
    }

    @Override
    protected Document handleGetMore(String databaseName, String command, Document query) {
        Cursor cursor = getCursorRegistry().getCursor(((Number) query.get(command)).longValue());
        if (cursor instanceof ChangeStreamCursor changeStream) {
            return changeStreams.getMore(changeStream, query);
        }
        return super.handleGetMore(databaseName, command, query);
    }

    @Override
    public void dropDatabase(String databaseName) {
        boolean existed = listDatabaseNames().contains(databaseName);
        // Drops each collection first, which records their drop events.
        super.dropDatabase(databaseName);
        if (existed) {
            oplog.append(Change.dropDatabase(databaseName));
        }
    }

    private Document currentDocument(Namespace ns, Object id) {
        if (!listDatabaseNames().contains(ns.db())) {
            return null;
        }
        MongoCollection<?> collection = resolveDatabase(ns.db()).resolveCollection(ns.coll(), false);
        return collection instanceof CapturingCollection capturing ? capturing.snapshotById(id) : null;
    }
}
