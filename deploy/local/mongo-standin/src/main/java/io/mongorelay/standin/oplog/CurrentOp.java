package io.mongorelay.standin.oplog;

import java.util.List;
import java.util.stream.Stream;

import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.aggregation.Aggregation;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.oplog.NoopOplog;

/**
 * The $currentOp stage (an aggregate on admin), as far as a test needs it to count a client's
 * change streams: with {@code idleCursors: true} it lists the open change stream cursors, each
 * with the appName of the client that opened it. Commands in progress are not listed.
 */
final class CurrentOp {

    private CurrentOp() {
    }

    static boolean isCurrentOp(Document aggregate) {
        return aggregate.get("pipeline") instanceof List<?> pipeline && !pipeline.isEmpty()
            && pipeline.get(0) instanceof Document first && first.containsKey("$currentOp");
    }

    /** The aggregate's reply: the cursors, through the stages after $currentOp, in one batch. */
    static Document run(Document aggregate, List<ChangeStreamCursor> open) {
        List<Document> stages = Aggregation.parse(aggregate.get("pipeline"));
        Document spec = stages.get(0).get("$currentOp") instanceof Document d ? d : new Document();
        Stream<Document> ops = Utils.isTrue(spec.get("idleCursors"))
            ? open.stream().map(ChangeStreamCursor::idleCursor)
            : Stream.empty();
        List<Document> rest = stages.subList(1, stages.size());
        List<Document> result = rest.isEmpty()
            ? ops.toList()
            : Aggregation.fromPipeline(rest, null, null, null, NoopOplog.get()).runStages(ops);
        Document reply = new Document("cursor",
            new Document("firstBatch", result).append("id", 0L).append("ns", "admin.$cmd.aggregate"));
        Utils.markOkay(reply);
        return reply;
    }
}
