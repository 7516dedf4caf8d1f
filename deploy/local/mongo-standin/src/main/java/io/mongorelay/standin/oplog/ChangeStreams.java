package io.mongorelay.standin.oplog;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.CursorNotFoundException;
import io.mongorelay.standin.oplog.ChangeStreamCursor.Batch;
import io.mongorelay.standin.oplog.ChangeStreamRequest.AfterToken;
import io.mongorelay.standin.oplog.ChangeStreamRequest.AtOperationTime;
import io.mongorelay.standin.oplog.ChangeStreamRequest.StartPoint;
import io.mongorelay.standin.oplog.ResumeToken.ResumePoint;

/**
 * Serves change streams: the $changeStream aggregate that opens one, and the getMores that read
 * it. Every reply carries the batch's postBatchResumeToken.
 */
final class ChangeStreams {

    /** How long a getMore without maxTimeMS waits for events, as on a real server. */
    private static final long DEFAULT_AWAIT_MILLIS = 1000;

    private final BoundedOplog oplog;
    private final CursorRegistry cursors;
    private final DocumentLookup lookup;
    /**
     * Cursors handed out, for $currentOp. The registry drops a cursor on killCursors without
     * telling us, so those it no longer holds are pruned on every open and every listing.
     */
    private final Map<Long, ChangeStreamCursor> opened = new ConcurrentHashMap<>();

    ChangeStreams(BoundedOplog oplog, CursorRegistry cursors, DocumentLookup lookup) {
        this.oplog = oplog;
        this.cursors = cursors;
        this.lookup = lookup;
    }

    /** Opens a change stream for the client named appName (null: unnamed). */
    Document open(String db, Document aggregate, String appName) {
        ChangeStreamRequest request = ChangeStreamRequest.parse(db, aggregate);
        long position = startPosition(request.start(), request.scope().cursorNamespace());
        ChangeEvents events = new ChangeEvents(request.updateDocument(), request.beforeChangeField(), lookup);
        ChangeStreamCursor cursor = new ChangeStreamCursor(cursors.generateCursorId(), oplog, request.scope(), events,
            request.pipeline(), position, new ChangeStreamCursor.Origin(appName, aggregate, Instant.now()));
        Batch batch = cursor.nextBatch(request.firstBatchSize(), 0);
        if (!cursor.isEmpty()) {
            cursors.add(cursor);
            pruneClosed();
            opened.put(cursor.getId(), cursor);
        }
        return reply("firstBatch", cursor, batch);
    }

    /** The change stream cursors still open. */
    List<ChangeStreamCursor> openCursors() {
        pruneClosed();
        return List.copyOf(opened.values());
    }

    private void pruneClosed() {
        opened.values().removeIf(cursor -> !isRegistered(cursor));
    }

    private boolean isRegistered(ChangeStreamCursor cursor) {
        try {
            return cursors.getCursor(cursor.getId()) == cursor;
        } catch (CursorNotFoundException e) {
            return false;
        }
    }

    Document getMore(ChangeStreamCursor cursor, Document getMore) {
        int batchSize = getMore.get("batchSize") instanceof Number n && n.intValue() > 0 ? n.intValue() : Integer.MAX_VALUE;
        long awaitMillis = getMore.get("maxTimeMS") instanceof Number n ? n.longValue() : DEFAULT_AWAIT_MILLIS;
        Batch batch = cursor.nextBatch(batchSize, awaitMillis);
        if (cursor.isEmpty()) {
            cursors.remove(cursor);
            opened.remove(cursor.getId());
        }
        return reply("nextBatch", cursor, batch);
    }

    /**
     * The cluster time after which the stream reads, checked against what the oplog still holds
     * the way a real server checks it: a start point older than the retained history fails with
     * ChangeStreamHistoryLost (286); an event token whose event is not in the oplog fails with
     * ChangeStreamFatalError (280).
     */
    private long startPosition(StartPoint start, String namespace) {
        if (start instanceof AtOperationTime at) {
            if (oplog.newestDropped() >= at.clusterTime()) {
                throw ChangeStreamErrors.historyLost();
            }
            return at.clusterTime() - 1;
        }
        if (!(start instanceof AfterToken after)) {
            return oplog.highWaterMark();
        }
        ResumePoint point = after.point();
        if (point.fromInvalidate() && !after.startAfter()) {
            throw ChangeStreamErrors.resumeAfterInvalidate();
        }
        if (point.highWaterMark()) {
            if (oplog.newestDropped() > point.clusterTime()) {
                throw ChangeStreamErrors.historyLost();
            }
            return point.clusterTime();
        }
        if (oplog.newestDropped() >= point.clusterTime()) {
            throw ChangeStreamErrors.historyLost();
        }
        OplogEntry entry = oplog.at(point.clusterTime());
        String expected = entry == null ? null : point.fromInvalidate() ? entry.invalidateToken() : entry.token();
        if (!point.data().equals(expected)) {
            throw ChangeStreamErrors.tokenNotFound(namespace, point.data());
        }
        return point.clusterTime();
    }

    private static Document reply(String batchField, ChangeStreamCursor cursor, Batch batch) {
        Document cursorDocument = new Document(batchField, batch.events())
            .append("postBatchResumeToken", ResumeToken.toDocument(batch.postBatchResumeToken()))
            .append("id", cursor.isEmpty() ? 0L : cursor.getId())
            .append("ns", cursor.namespace());
        Document reply = new Document("cursor", cursorDocument);
        Utils.markOkay(reply);
        return reply;
    }
}
