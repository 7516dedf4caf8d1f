package io.mongorelay.standin.oplog;

import java.time.Instant;
import java.util.Collection;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

import io.mongorelay.standin.ClusterClock;

/**
 * The oplog: changes ordered by cluster time, at most {@code maxEntries} of them (the oldest are
 * dropped first, as from a capped collection).
 *
 * <p>Entries live in a skip list keyed by cluster time, so a reader seeks straight to its resume
 * point and reads on from there; nothing is scanned or sorted per read. Appends are serialised by
 * one lock that both stamps the entry and publishes it, so entries become visible in cluster-time
 * order: a reader that has seen an entry has seen every earlier one still retained.
 */
final class BoundedOplog {

    private final ClusterClock clock;
    private final int maxEntries;
    private final ConcurrentSkipListMap<Long, OplogEntry> entries = new ConcurrentSkipListMap<>();
    private final ReentrantLock appendLock = new ReentrantLock();
    private final Condition appended = appendLock.newCondition();
    private int size;
    private volatile long newest = -1;
    private volatile long newestDropped = -1;

    BoundedOplog(ClusterClock clock, int maxEntries) {
        if (maxEntries < 1) {
            throw new IllegalArgumentException("the oplog must hold at least one entry, not " + maxEntries);
        }
        this.clock = clock;
        this.maxEntries = maxEntries;
    }

    void append(Change change) {
        // The token tail depends only on the change: encode it before taking the lock.
        String tokenTail = ResumeToken.eventTail(change.collectionUuid(), change.documentKey(), false);
        appendLock.lock();
        try {
            long clusterTime = clock.tick();
            entries.put(clusterTime, new OplogEntry(clusterTime, Instant.now(), change, tokenTail));
            newest = clusterTime;
            if (++size > maxEntries) {
                newestDropped = entries.pollFirstEntry().getKey();
                size--;
            }
            appended.signalAll();
        } finally {
            appendLock.unlock();
        }
    }

    /**
     * The cluster time up to which a reader that has read every entry has seen everything:
     * every entry at or before it is already in the oplog, every later append comes after it.
     */
    long highWaterMark() {
        appendLock.lock();
        try {
            return clock.now();
        } finally {
            appendLock.unlock();
        }
    }

    /** The entries after {@code clusterTime}, oldest first; a live view. */
    Collection<OplogEntry> after(long clusterTime) {
        return entries.tailMap(clusterTime, false).values();
    }

    /** The entry at exactly {@code clusterTime}, or null. */
    OplogEntry at(long clusterTime) {
        return entries.get(clusterTime);
    }

    /**
     * The cluster time of the newest entry dropped to keep the oplog bounded, or -1. A reader
     * whose position is before it has lost history.
     */
    long newestDropped() {
        return newestDropped;
    }

    /**
     * Waits until an entry after {@code clusterTime} exists or the time is up.
     *
     * @return whether such an entry exists
     */
    boolean awaitAfter(long clusterTime, long timeout, TimeUnit unit) throws InterruptedException {
        long nanos = unit.toNanos(timeout);
        appendLock.lock();
        try {
            while (newest <= clusterTime && nanos > 0) {
                nanos = appended.awaitNanos(nanos);
            }
            return newest > clusterTime;
        } finally {
            appendLock.unlock();
        }
    }
}
