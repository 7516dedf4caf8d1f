package io.mongorelay.standin.oplog;

import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;

/** An in-memory database whose user collections record their writes in the oplog. */
final class CapturingDatabase extends MemoryDatabase {

    private final BoundedOplog oplog;

    CapturingDatabase(String databaseName, CursorRegistry cursorRegistry, BoundedOplog oplog) {
        super(databaseName, cursorRegistry);
        this.oplog = oplog;
    }

    @Override
    protected MemoryCollection openOrCreateCollection(String collectionName, CollectionOptions options) {
        // The superclass constructor opens system.namespaces before this.oplog is set; system
        // collections are not captured by a real server's change streams either.
        if (collectionName.startsWith("system.")) {
            return super.openOrCreateCollection(collectionName, options);
        }
        return new CapturingCollection(this, collectionName, options, cursorRegistry, oplog);
    }
}
