package io.mongorelay.standin.oplog;

import de.bwaldvogel.mongo.bson.Document;

/** Finds the current version of a document by its _id, for fullDocument: "updateLookup". */
@FunctionalInterface
interface DocumentLookup {

    /** A private copy of the document, or null when it (or its collection) is gone. */
    Document find(Namespace ns, Object id);
}
