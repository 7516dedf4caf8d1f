package io.mongorelay.standin.oplog;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Stream;

import de.bwaldvogel.mongo.backend.aggregation.Aggregation;
import de.bwaldvogel.mongo.backend.aggregation.Expression;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import io.mongorelay.standin.Refusals;
import de.bwaldvogel.mongo.oplog.NoopOplog;

/**
 * The stages a client put after $changeStream, checked when the stream opens (as a real server
 * does) and run by the library's aggregation engine on each event.
 */
final class EventPipeline {

    private static final Set<String> ALLOWED_STAGES = Set.of(
        "$match", "$project", "$addFields", "$set", "$unset", "$replaceRoot", "$replaceWith", "$redact");

    /** Null when there are no stages. */
    private final Aggregation aggregation;

    private EventPipeline(Aggregation aggregation) {
        this.aggregation = aggregation;
    }

    static EventPipeline of(List<Document> stages) {
        if (stages.isEmpty()) {
            return new EventPipeline(null);
        }
        List<Document> translated = new ArrayList<>(stages.size());
        for (Document stage : stages) {
            translated.add(check(stage));
        }
        // Only per-event stages are allowed: none needs a database, collection or oplog.
        return new EventPipeline(Aggregation.fromPipeline(translated, null, null, null, NoopOplog.get()));
    }

    /** The event after the stages, or null when they filtered it out. */
    Document apply(Document event) {
        if (aggregation == null) {
            return event;
        }
        // Stages may modify nested documents in place; those are shared with the oplog.
        Document result = aggregation.runStagesAsStream(Stream.of(event.cloneDeeply())).findFirst().orElse(null);
        if (result != null && !Objects.equals(result.get("_id"), event.get("_id"))) {
            throw ChangeStreamErrors.idModified();
        }
        return result;
    }

    /** Checks one stage and rewrites it to a form the library knows ($set, $replaceWith). */
    private static Document check(Document stage) {
        if (stage.size() != 1) {
            throw new MongoServerError(40323, "Location40323",
                "A pipeline stage specification object must contain exactly one field.");
        }
        String name = stage.keySet().iterator().next();
        Object spec = stage.get(name);
        if (name.equals("$changeStreamSplitLargeEvent")) {
            throw Refusals.unsupported("$changeStreamSplitLargeEvent");
        }
        if (!ALLOWED_STAGES.contains(name)) {
            throw new MongoServerError(20, "IllegalOperation", name + " is not permitted in a $changeStream pipeline");
        }
        requireKnownExpressions(name.equals("$match") && spec instanceof Document match ? match.get("$expr") : spec);
        return switch (name) {
            case "$set" -> new Document("$addFields", spec);
            case "$replaceWith" -> new Document("$replaceRoot", new Document("newRoot", spec));
            default -> stage;
        };
    }

    /**
     * Fails on an expression operator the library does not implement ($toHashedIndexKey, say)
     * now, with the error a server that lacks it gives, rather than at the first event.
     */
    private static void requireKnownExpressions(Object spec) {
        if (spec instanceof Document document) {
            for (String key : document.keySet()) {
                if (key.equals("$literal")) {
                    continue;
                }
                if (key.startsWith("$")) {
                    try {
                        Expression.valueOf(key);
                    } catch (IllegalArgumentException e) {
                        throw new MongoServerError(168, "InvalidPipelineOperator", "Unrecognized expression '" + key + "'");
                    }
                }
                requireKnownExpressions(document.get(key));
            }
        } else if (spec instanceof List<?> list) {
            list.forEach(EventPipeline::requireKnownExpressions);
        }
    }
}
