package io.mongorelay.standin.oplog;

import java.time.Instant;

/**
 * A change with its place in history.
 *
 * @param clusterTime the entry's timestamp (seconds in the high 32 bits, increment in the low)
 * @param tokenTail the cluster-time-independent part of the entry's resume token
 */
record OplogEntry(long clusterTime, Instant wallTime, Change change, String tokenTail) {

    String token() {
        return ResumeToken.event(clusterTime, tokenTail);
    }

    /** The token of the invalidate event that follows this entry in a stream it ends. */
    String invalidateToken() {
        return ResumeToken.event(clusterTime,
            ResumeToken.eventTail(change.collectionUuid(), change.documentKey(), true));
    }
}
