package io.mongorelay.standin.oplog;

import java.util.Set;

/**
 * What a change stream watches: one collection, one database ({@code coll} null) or every user
 * database ({@code db} null).
 */
record Scope(String db, String coll) {

    /** Databases whose changes a cluster-wide stream does not show, as on a real server. */
    private static final Set<String> INTERNAL_DATABASES = Set.of("admin", "config", "local");

    static Scope cluster() {
        return new Scope(null, null);
    }

    boolean matches(Change change) {
        Namespace ns = change.ns();
        if (db == null) {
            return !INTERNAL_DATABASES.contains(ns.db());
        }
        if (!db.equals(ns.db())) {
            return false;
        }
        // A collection's stream ends with the drop of the collection itself, before the
        // dropDatabase entry that follows it.
        return coll == null || coll.equals(ns.coll());
    }

    /** Whether the change, if it matches, ends the stream with an invalidate event. */
    boolean isInvalidatedBy(Change change) {
        if (db == null) {
            return false;
        }
        if (coll == null) {
            return change.kind() == ChangeKind.DROP_DATABASE;
        }
        return change.kind() == ChangeKind.DROP || change.kind() == ChangeKind.RENAME;
    }

    /** The namespace a real server puts in the cursor of this stream. */
    String cursorNamespace() {
        if (db == null) {
            return "admin.$cmd.aggregate";
        }
        return coll == null ? db + ".$cmd.aggregate" : db + "." + coll;
    }
}
