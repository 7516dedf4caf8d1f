package io.mongorelay.standin.oplog;

import java.util.List;

import de.bwaldvogel.mongo.exception.MongoServerError;
import io.mongorelay.standin.LabeledError;

/** The errors a real server gives for change streams that cannot go on, with its codes and words. */
final class ChangeStreamErrors {

    private static final List<String> NON_RESUMABLE = List.of("NonResumableChangeStreamError");

    private ChangeStreamErrors() {
    }

    static MongoServerError historyLost() {
        return new LabeledError(286, "ChangeStreamHistoryLost",
            "Resume of change stream was not possible, as the resume point may no longer be in the oplog.",
            NON_RESUMABLE);
    }

    static MongoServerError tokenNotFound(String namespace, String data) {
        return new LabeledError(280, "ChangeStreamFatalError",
            "Executor error during aggregate command on namespace: " + namespace
                + " :: caused by :: cannot resume stream; the resume token was not found. {_data: \"" + data + "\"}",
            NON_RESUMABLE);
    }

    static MongoServerError idModified() {
        return new LabeledError(280, "ChangeStreamFatalError",
            "Encountered an event whose _id field, which contains the resume token, was modified by the pipeline. "
                + "Modifying the _id field of an event makes it impossible to resume the stream from that point. "
                + "Only transformations that retain the unmodified _id field are allowed.",
            NON_RESUMABLE);
    }

    static MongoServerError resumeAfterInvalidate() {
        return new MongoServerError(260, "InvalidResumeToken",
            "Attempting to resume a change stream using 'resumeAfter' is not allowed from an invalidate notification.");
    }
}
