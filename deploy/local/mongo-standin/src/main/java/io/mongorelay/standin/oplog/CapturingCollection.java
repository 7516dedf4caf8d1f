package io.mongorelay.standin.oplog;

import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.backend.ArrayFilters;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.oplog.Oplog;

/**
 * An in-memory collection that records every write in the oplog at the moment it happens.
 *
 * <p>Writes are captured here rather than through the library's Oplog callbacks because those
 * come after the fact: they carry no pre-image to compute an updateDescription from, report every
 * document of an insert batch even when some failed, and are not called by findAndModify at all.
 * Every method here runs under the collection's monitor, like the library's own.
 */
final class CapturingCollection extends MemoryCollection {

    private static final String ID_FIELD = "_id";

    private final BoundedOplog oplog;

    /** The update being applied, for handleUpdate; set only while an update runs. */
    private Document currentUpdate;

    CapturingCollection(MongoDatabase database, String collectionName, CollectionOptions options,
                        CursorRegistry cursorRegistry, BoundedOplog oplog) {
        super(database, collectionName, options, cursorRegistry);
        this.oplog = oplog;
    }

    /** A private copy of the document with this {@code _id}, found through the _id index. */
    synchronized Document snapshotById(Object id) {
        for (Document document : handleQuery(new Document(ID_FIELD, id), 0, 1)) {
            return document.cloneDeeply();
        }
        return null;
    }

    @Override
    public synchronized void addDocument(Document document) {
        super.addDocument(document);
        oplog.append(Change.insert(namespace(), getUuid(), document));
    }

    @Override
    public synchronized void removeDocument(Document document) {
        super.removeDocument(document);
        oplog.append(Change.delete(namespace(), getUuid(), document.get(ID_FIELD)));
    }

    @Override
    public synchronized Document updateDocuments(Document selector, Document update, ArrayFilters arrayFilters,
                                                 boolean isMulti, boolean isUpsert, Oplog libraryOplog) {
        // libraryOplog is the library's no-op oplog: this class does the recording.
        currentUpdate = update;
        try {
            return super.updateDocuments(selector, update, arrayFilters, isMulti, isUpsert, libraryOplog);
        } finally {
            currentUpdate = null;
        }
    }

    @Override
    public synchronized Document findAndModify(Document query) {
        currentUpdate = query.get("update") instanceof Document update ? update : null;
        try {
            return super.findAndModify(query);
        } finally {
            currentUpdate = null;
        }
    }

    /** Called by the library for each document an update changed, with its old state. */
    @Override
    protected void handleUpdate(Integer position, Document before, Document after) {
        if (isReplacement(currentUpdate)) {
            oplog.append(Change.replace(namespace(), getUuid(), after));
        } else {
            oplog.append(Change.update(namespace(), getUuid(), after.get(ID_FIELD),
                UpdateDescriptions.describe(before, after, currentUpdate)));
        }
    }

    @Override
    public synchronized void renameTo(MongoDatabase newDatabase, String newCollectionName) {
        Namespace from = namespace();
        super.renameTo(newDatabase, newCollectionName);
        oplog.append(Change.rename(from, namespace(), getUuid()));
    }

    @Override
    public synchronized void drop() {
        super.drop();
        oplog.append(Change.drop(namespace(), getUuid()));
    }

    private Namespace namespace() {
        return new Namespace(getDatabaseName(), getCollectionName());
    }

    /**
     * An update without operators replaces the whole document. An update that reached us by
     * another path than the two above (none is known) is recorded as a replacement too, which
     * at least carries the whole new document.
     */
    private static boolean isReplacement(Document update) {
        return update == null || update.keySet().stream().noneMatch(key -> key.startsWith("$"));
    }
}
