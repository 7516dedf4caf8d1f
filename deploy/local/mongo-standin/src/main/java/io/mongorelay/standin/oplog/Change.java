package io.mongorelay.standin.oplog;

import java.util.UUID;

import de.bwaldvogel.mongo.bson.Document;

/**
 * One write as the oplog records it, before the oplog gives it a cluster time. Documents held
 * here are private copies: the collection keeps changing its own.
 *
 * @param collectionUuid null for dropDatabase
 * @param documentKey {@code {_id: ...}} for insert, update, replace and delete, else null
 * @param fullDocument the document after an insert or replace, else null
 * @param updateDescription {@code {updatedFields, removedFields, truncatedArrays}} of an update
 * @param renamedTo the new name after a rename, else null
 */
record Change(ChangeKind kind, Namespace ns, UUID collectionUuid, Document documentKey, Document fullDocument,
              Document updateDescription, Namespace renamedTo) {

    private static final String ID = "_id";

    static Change insert(Namespace ns, UUID uuid, Document document) {
        Document copy = document.cloneDeeply();
        return new Change(ChangeKind.INSERT, ns, uuid, keyOf(copy), copy, null, null);
    }

    static Change replace(Namespace ns, UUID uuid, Document after) {
        Document copy = after.cloneDeeply();
        return new Change(ChangeKind.REPLACE, ns, uuid, keyOf(copy), copy, null, null);
    }

    static Change update(Namespace ns, UUID uuid, Object id, Document updateDescription) {
        return new Change(ChangeKind.UPDATE, ns, uuid, new Document(ID, id), null, updateDescription, null);
    }

    static Change delete(Namespace ns, UUID uuid, Object id) {
        return new Change(ChangeKind.DELETE, ns, uuid, new Document(ID, id), null, null, null);
    }

    static Change drop(Namespace ns, UUID uuid) {
        return new Change(ChangeKind.DROP, ns, uuid, null, null, null, null);
    }

    static Change rename(Namespace from, Namespace to, UUID uuid) {
        return new Change(ChangeKind.RENAME, from, uuid, null, null, null, to);
    }

    static Change dropDatabase(String db) {
        return new Change(ChangeKind.DROP_DATABASE, Namespace.ofDatabase(db), null, null, null, null, null);
    }

    private static Document keyOf(Document document) {
        return new Document(ID, document.get(ID));
    }
}
