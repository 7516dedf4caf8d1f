package io.mongorelay.standin;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

import de.bwaldvogel.mongo.backend.Cursor;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.InMemoryCursor;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;

/**
 * Caps the documents of one cursor batch (find, aggregate, getMore) at 16 MiB, as a real server
 * does: the library fills a batch by count alone, so a batch of large documents could reach
 * hundreds of MB, which real clients (the MongoDB Kafka Connector's copy) fail on. The documents
 * left out are served first by the cursor's next getMore.
 *
 * <p>Change stream cursors are left alone: their batches carry a resume token tied to the
 * batch's last event.
 */
final class ReplyBatchCap {

    /** A real server's limit on a cursor batch's documents: maxBsonObjectSize. */
    static final int MAX_BATCH_BYTES = 16 * 1024 * 1024;

    private ReplyBatchCap() {
    }

    /** Caps the batch of reply, a find, aggregate or getMore reply, in place. */
    static void apply(Document reply, CursorRegistry cursors) {
        if (!(reply.get("cursor") instanceof Document cursor) || cursor.containsKey("postBatchResumeToken")) {
            return;
        }
        String field = cursor.containsKey("firstBatch") ? "firstBatch" : "nextBatch";
        if (!(cursor.get(field) instanceof List<?> batch)) {
            return;
        }
        long id = ((Number) cursor.get("id")).longValue();
        Cursor inner = id == 0 ? null : cursors.getCursor(id);
        if (id != 0 && !(inner instanceof InMemoryCursor || inner instanceof Overflow)) {
            return;
        }
        int keep = 0;
        long bytes = 0;
        for (Object doc : batch) {
            bytes += size((Document) doc);
            // At least one document a batch, so that a cursor always makes progress.
            if (keep > 0 && bytes > MAX_BATCH_BYTES) {
                break;
            }
            keep++;
        }
        if (keep == batch.size()) {
            return;
        }
        Deque<Document> rest = new ArrayDeque<>();
        for (Object doc : batch.subList(keep, batch.size())) {
            rest.add((Document) doc);
        }
        if (id == 0) {
            id = cursors.generateCursorId();
        } else {
            cursors.remove(id);
        }
        cursors.add(new Overflow(id, rest, inner));
        cursor.put(field, new ArrayList<>(batch.subList(0, keep)));
        cursor.put("id", id);
    }

    private static int size(Document doc) {
        ByteBuf buf = Unpooled.buffer();
        try {
            BsonEncoder.encodeDocument(doc, buf);
            return buf.readableBytes();
        } finally {
            buf.release();
        }
    }

    /** A cursor that serves the documents a capped batch left out, then those of the cursor it replaced. */
    private static final class Overflow implements Cursor {
        private final long id;
        private final Deque<Document> pending;
        private final Cursor inner;

        Overflow(long id, Deque<Document> pending, Cursor inner) {
            this.id = id;
            this.pending = pending;
            this.inner = inner;
        }

        @Override
        public long getId() {
            return id;
        }

        @Override
        public boolean isEmpty() {
            return pending.isEmpty() && (inner == null || inner.isEmpty());
        }

        @Override
        public List<Document> takeDocuments(int n) {
            // A getMore without batchSize asks for no count limit: the cap above then applies alone.
            if (n <= 0) {
                n = Integer.MAX_VALUE;
            }
            List<Document> docs = new ArrayList<>();
            while (docs.size() < n && !pending.isEmpty()) {
                docs.add(pending.poll());
            }
            if (docs.size() < n && inner != null && !inner.isEmpty()) {
                docs.addAll(inner.takeDocuments(n - docs.size()));
            }
            return docs;
        }
    }
}
