package io.mongorelay.standin.oplog;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import de.bwaldvogel.mongo.backend.AbstractCursor;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;

/**
 * An open change stream: a position in the oplog (a cluster time; everything at or before it has
 * been read) and what to make of the entries after it.
 */
final class ChangeStreamCursor extends AbstractCursor {

    /** A real server stops a batch at 16 MiB of BSON; keep room for the reply around it. */
    private static final int MAX_BATCH_BYTES = 16 * 1024 * 1024 - 64 * 1024;

    private final BoundedOplog oplog;
    private final Scope scope;
    private final ChangeEvents events;
    private final EventPipeline pipeline;
    private final Origin origin;
    private long position;
    private boolean invalidated;

    ChangeStreamCursor(long id, BoundedOplog oplog, Scope scope, ChangeEvents events, EventPipeline pipeline,
                       long position, Origin origin) {
        super(id);
        this.oplog = oplog;
        this.scope = scope;
        this.events = events;
        this.pipeline = pipeline;
        this.position = position;
        this.origin = origin;
    }

    /** Who opened the stream, with what command, and when: what $currentOp reports. */
    record Origin(String appName, Document command, Instant created) {
    }

    /** The cursor as $currentOp with idleCursors: true lists it. */
    Document idleCursor() {
        Document cursor = new Document("cursorId", getId())
            .append("createdDate", origin.created())
            .append("tailable", Boolean.TRUE)
            .append("awaitData", Boolean.TRUE)
            .append("originatingCommand", origin.command());
        Document op = new Document("type", "idleCursor").append("active", Boolean.FALSE).append("ns", namespace());
        op.putIfNotNull("appName", origin.appName());
        return op.append("cursor", cursor);
    }

    /** Events in a reply, and the token that resumes after everything this batch covered. */
    record Batch(List<Document> events, String postBatchResumeToken) {
    }

    /** The namespace a real server reports for this cursor. */
    String namespace() {
        return scope.cursorNamespace();
    }

    /** Whether the stream has ended with an invalidate event. */
    @Override
    public synchronized boolean isEmpty() {
        return invalidated;
    }

    /** A batch of at most {@code numberToReturn} events (0: as many as fit), without waiting. */
    @Override
    public List<Document> takeDocuments(int numberToReturn) {
        return nextBatch(numberToReturn > 0 ? numberToReturn : Integer.MAX_VALUE, 0).events();
    }

    /**
     * Reads the next batch. When there is nothing to return yet, waits up to {@code awaitMillis}
     * for appends to the oplog (a tailable, awaitData cursor) instead of returning at once, so an
     * idle stream does not spin.
     */
    synchronized Batch nextBatch(int maxEvents, long awaitMillis) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(awaitMillis);
        while (true) {
            Batch batch = read(maxEvents);
            long remaining = deadline - System.nanoTime();
            if (!batch.events().isEmpty() || invalidated || remaining <= 0) {
                return batch;
            }
            try {
                oplog.awaitAfter(position, remaining, TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new MongoServerError(11601, "Interrupted", "operation was interrupted");
            }
        }
    }

    private Batch read(int maxEvents) {
        // Taken first: every entry at or before it is in the oplog by now, so once the scan
        // below has reached the end, the stream has seen everything up to it.
        long highWaterMark = oplog.highWaterMark();
        List<Document> batch = new ArrayList<>();
        ByteBuf scratch = Unpooled.buffer();
        try {
            long bytes = 0;
            OplogEntry lastReturned = null;
            for (OplogEntry entry : oplog.after(position)) {
                requireHistory();
                position = entry.clusterTime();
                if (!scope.matches(entry.change())) {
                    continue;
                }
                Document event = pipeline.apply(events.event(entry));
                if (event != null) {
                    batch.add(event);
                    lastReturned = entry;
                    bytes += bsonSize(event, scratch);
                }
                if (scope.isInvalidatedBy(entry.change())) {
                    invalidated = true;
                    Document invalidate = pipeline.apply(events.invalidate(entry));
                    if (invalidate != null) {
                        batch.add(invalidate);
                    }
                    return new Batch(batch, entry.invalidateToken());
                }
                if (event != null && (batch.size() >= maxEvents || bytes >= MAX_BATCH_BYTES)) {
                    return new Batch(batch, entry.token());
                }
            }
            requireHistory();
            if (lastReturned != null && lastReturned.clusterTime() == position && position >= highWaterMark) {
                return new Batch(batch, lastReturned.token());
            }
            position = Math.max(position, highWaterMark);
            return new Batch(batch, ResumeToken.highWaterMark(position));
        } finally {
            scratch.release();
        }
    }

    private static int bsonSize(Document document, ByteBuf scratch) {
        scratch.clear();
        BsonEncoder.encodeDocument(document, scratch);
        return scratch.writerIndex();
    }

    /**
     * Entries after the position were dropped before this stream read them: the history it
     * needs is gone, as when a real server's oplog rolls over a slow reader.
     */
    private void requireHistory() {
        if (oplog.newestDropped() > position) {
            throw ChangeStreamErrors.historyLost();
        }
    }
}
