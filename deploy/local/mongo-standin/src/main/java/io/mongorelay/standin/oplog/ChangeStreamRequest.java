package io.mongorelay.standin.oplog;

import java.util.List;
import java.util.Set;

import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.aggregation.Aggregation;
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import io.mongorelay.standin.Refusals;
import io.mongorelay.standin.oplog.ChangeEvents.UpdateDocument;
import io.mongorelay.standin.oplog.ResumeToken.ResumePoint;

/**
 * An aggregate command whose pipeline starts with $changeStream, parsed and checked the way a
 * real server checks it, with the same error codes.
 *
 * @param firstBatchSize how many events the aggregate reply may carry
 */
record ChangeStreamRequest(Scope scope, UpdateDocument updateDocument, boolean beforeChangeField,
                           StartPoint start, EventPipeline pipeline, int firstBatchSize) {

    /** A real server's default first batch for aggregate. */
    private static final int DEFAULT_FIRST_BATCH = 101;

    private static final Set<String> OPTIONS = Set.of("fullDocument", "fullDocumentBeforeChange", "resumeAfter",
        "startAfter", "startAtOperationTime", "allChangesForCluster", "showExpandedEvents");

    /** Where a stream starts reading. */
    sealed interface StartPoint {
    }

    /** After everything already written. */
    record Now() implements StartPoint {
    }

    /** At this cluster time, inclusive. */
    record AtOperationTime(long clusterTime) implements StartPoint {
    }

    /** After the event (or high-water mark) of a token; {@code startAfter} may follow an invalidate. */
    record AfterToken(ResumePoint point, boolean startAfter) implements StartPoint {
    }

    static boolean isChangeStream(Document aggregate) {
        return aggregate.get("pipeline") instanceof List<?> stages && !stages.isEmpty()
            && stages.get(0) instanceof Document first && first.containsKey("$changeStream");
    }

    static ChangeStreamRequest parse(String db, Document aggregate) {
        List<Document> stages = Aggregation.parse(aggregate.get("pipeline"));
        if (!(stages.get(0).get("$changeStream") instanceof Document options)) {
            throw new MongoServerError(50808, "Location50808", "$changeStream stage expects a document as argument");
        }
        if (!(aggregate.get("cursor") instanceof Document cursor)) {
            throw new MongoServerError(9, "FailedToParse",
                "The 'cursor' option is required, except for aggregate with the explain argument");
        }
        for (String option : options.keySet()) {
            if (!OPTIONS.contains(option)) {
                throw new MongoServerError(40415, "Location40415",
                    "BSON field '$changeStream." + option + "' is an unknown field.");
            }
        }
        if (Utils.isTrue(options.get("showExpandedEvents"))) {
            throw Refusals.unsupported("showExpandedEvents");
        }
        int batchSize = cursor.get("batchSize") instanceof Number n && n.intValue() > 0 ? n.intValue() : DEFAULT_FIRST_BATCH;
        return new ChangeStreamRequest(
            scope(db, aggregate.get("aggregate"), Utils.isTrue(options.get("allChangesForCluster"))),
            updateDocument(options.get("fullDocument")),
            beforeChangeField(options.get("fullDocumentBeforeChange")),
            start(options),
            EventPipeline.of(stages.subList(1, stages.size())),
            batchSize);
    }

    private static Scope scope(String db, Object target, boolean allChangesForCluster) {
        if (allChangesForCluster) {
            if (!db.equals("admin") || target instanceof String) {
                throw new MongoServerError(40572, "Location40572",
                    "A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' database, "
                        + "and with no collection name");
            }
            return Scope.cluster();
        }
        if (target instanceof String coll) {
            return new Scope(db, coll);
        }
        if (db.equals("admin")) {
            throw new MongoServerError(73, "InvalidNamespace", "$changeStream may not be opened on the internal admin database");
        }
        return new Scope(db, null);
    }

    private static UpdateDocument updateDocument(Object option) {
        if (option == null || option.equals("default")) {
            return UpdateDocument.NONE;
        } else if (option.equals("updateLookup")) {
            return UpdateDocument.LOOKUP;
        } else if (option.equals("whenAvailable")) {
            return UpdateDocument.NULL;
        } else if (option.equals("required")) {
            throw Refusals.unsupported("fullDocument: 'required' (post-images)");
        }
        throw new MongoServerError(2, "BadValue",
            "Enumeration value '" + option + "' for field '$changeStream.fullDocument' is not a valid value.");
    }

    private static boolean beforeChangeField(Object option) {
        if (option == null || option.equals("off")) {
            return false;
        } else if (option.equals("whenAvailable")) {
            return true;
        } else if (option.equals("required")) {
            throw Refusals.unsupported("fullDocumentBeforeChange: 'required' (pre-images)");
        }
        throw new MongoServerError(2, "BadValue",
            "Enumeration value '" + option + "' for field '$changeStream.fullDocumentBeforeChange' is not a valid value.");
    }

    private static StartPoint start(Document options) {
        Object resumeAfter = options.get("resumeAfter");
        Object startAfter = options.get("startAfter");
        Object startAt = options.get("startAtOperationTime");
        int given = (resumeAfter != null ? 1 : 0) + (startAfter != null ? 1 : 0) + (startAt != null ? 1 : 0);
        if (given > 1) {
            throw new MongoServerError(40674, "Location40674",
                "Only one type of resume option is allowed, but multiple were found.");
        }
        if (resumeAfter != null) {
            return new AfterToken(ResumeToken.parse(resumeAfter), false);
        } else if (startAfter != null) {
            return new AfterToken(ResumeToken.parse(startAfter), true);
        } else if (startAt != null) {
            if (!(startAt instanceof BsonTimestamp timestamp)) {
                throw new MongoServerError(14, "TypeMismatch",
                    "BSON field '$changeStream.startAtOperationTime' is the wrong type, expected type 'timestamp'");
            }
            return new AtOperationTime(timestamp.getValue());
        }
        return new Now();
    }
}
