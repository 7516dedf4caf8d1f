package io.mongorelay.standin;

/**
 * The deployment's logical clock. It hands out MongoDB timestamps as longs (seconds since the
 * epoch in the high 32 bits, an increment within the second in the low 32 bits) that never go
 * backwards, whatever the wall clock does.
 */
public final class ClusterClock {

    private long last;

    /** Returns a timestamp later than every one returned before: the time of a new oplog entry. */
    public synchronized long tick() {
        long seconds = Math.max(wallSeconds(), last >>> 32);
        last = seconds == last >>> 32 ? last + 1 : seconds << 32 | 1;
        return last;
    }

    /**
     * Returns the current cluster time: no earlier than any timestamp handed out, and moving on
     * with the wall clock while nothing is written (increment 0), the way a real replica set's
     * periodic no-op writes move it. Idle change streams' post-batch resume tokens follow it, so
     * a reader can checkpoint a quiet collection.
     */
    public synchronized long now() {
        last = Math.max(last, wallSeconds() << 32);
        return last;
    }

    private static long wallSeconds() {
        return System.currentTimeMillis() / 1000;
    }
}
