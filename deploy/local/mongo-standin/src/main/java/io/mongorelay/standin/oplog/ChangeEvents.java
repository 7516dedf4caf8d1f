package io.mongorelay.standin.oplog;

import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;

/**
 * Turns oplog entries into change events of the shape a MongoDB 6.0 server documents: _id (the
 * resume token), operationType, clusterTime, wallTime, then what the operation has: fullDocument,
 * ns, to, documentKey, updateDescription, fullDocumentBeforeChange.
 */
final class ChangeEvents {

    /** What a stream's fullDocument option asks for update events. */
    enum UpdateDocument {
        /** "default": no fullDocument field. */
        NONE,
        /** "updateLookup": the document as it is when the event is read, or null. */
        LOOKUP,
        /** "whenAvailable": the post-image, which this server never keeps, so null. */
        NULL
    }

    private final UpdateDocument updateDocument;
    private final boolean beforeChangeField;
    private final DocumentLookup lookup;

    /**
     * @param beforeChangeField whether fullDocumentBeforeChange is "whenAvailable": the field is
     *     then present and null, as on a collection that keeps no pre-images
     */
    ChangeEvents(UpdateDocument updateDocument, boolean beforeChangeField, DocumentLookup lookup) {
        this.updateDocument = updateDocument;
        this.beforeChangeField = beforeChangeField;
        this.lookup = lookup;
    }

    Document event(OplogEntry entry) {
        Change change = entry.change();
        Document event = header(entry.token(), change.kind().operationType(), entry);
        switch (change.kind()) {
            case INSERT, REPLACE -> event.append("fullDocument", change.fullDocument());
            case UPDATE -> {
                if (updateDocument == UpdateDocument.LOOKUP) {
                    event.append("fullDocument", lookup.find(change.ns(), change.documentKey().get("_id")));
                } else if (updateDocument == UpdateDocument.NULL) {
                    event.append("fullDocument", null);
                }
            }
            default -> {
                // drop, rename, delete and dropDatabase events have no document.
            }
        }
        event.append("ns", change.ns().toDocument());
        if (change.renamedTo() != null) {
            event.append("to", change.renamedTo().toDocument());
        }
        if (change.documentKey() != null) {
            event.append("documentKey", change.documentKey());
        }
        if (change.updateDescription() != null) {
            event.append("updateDescription", change.updateDescription());
        }
        if (beforeChangeField && (change.kind() == ChangeKind.UPDATE || change.kind() == ChangeKind.REPLACE
            || change.kind() == ChangeKind.DELETE)) {
            event.append("fullDocumentBeforeChange", null);
        }
        return event;
    }

    /** The event that ends a stream after {@code entry} dropped or renamed what it watched. */
    Document invalidate(OplogEntry entry) {
        return header(entry.invalidateToken(), "invalidate", entry);
    }

    private static Document header(String token, String operationType, OplogEntry entry) {
        return new Document("_id", ResumeToken.toDocument(token))
            .append("operationType", operationType)
            .append("clusterTime", new BsonTimestamp(entry.clusterTime()))
            .append("wallTime", entry.wallTime());
    }
}
