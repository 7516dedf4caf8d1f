package io.mongorelay.standin;

import java.util.List;

import de.bwaldvogel.mongo.MongoVersion;

/**
 * The server version the stand-in reports: MongoDB 6.0, wire version 17. The library's newest
 * built-in version (5.0, wire 8) is older than the Go driver v2 accepts (wire 9 and up), and 6.0
 * is what the change stream behaviour here imitates.
 */
final class ReportedVersion implements MongoVersion {

    static final int WIRE_VERSION = 17;

    @Override
    public List<Integer> getVersionArray() {
        return List.of(6, 0, 0, 0);
    }

    /** "6.0.0", not the library's join of the whole versionArray. */
    @Override
    public String toVersionString() {
        return "6.0.0";
    }

    @Override
    public int getWireVersion() {
        return WIRE_VERSION;
    }
}
