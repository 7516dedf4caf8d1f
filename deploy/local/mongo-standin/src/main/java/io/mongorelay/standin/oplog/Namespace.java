package io.mongorelay.standin.oplog;

import de.bwaldvogel.mongo.bson.Document;

/** A database, or a collection within one ({@code coll} is null for a whole database). */
record Namespace(String db, String coll) {

    static Namespace ofDatabase(String db) {
        return new Namespace(db, null);
    }

    /** The {@code ns} (or {@code to}) field of a change event. */
    Document toDocument() {
        Document ns = new Document("db", db);
        if (coll != null) {
            ns.append("coll", coll);
        }
        return ns;
    }

    @Override
    public String toString() {
        return coll == null ? db : db + "." + coll;
    }
}
