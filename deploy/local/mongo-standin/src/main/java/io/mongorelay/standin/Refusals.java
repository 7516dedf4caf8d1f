package io.mongorelay.standin;

import java.util.List;

import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;

/**
 * What a real server does and the stand-in deliberately refuses, with a plain error, where the
 * library would otherwise go wrong quietly (run a transaction's commands without atomicity,
 * accept a collection option it then ignores) or fail with an internal error.
 */
public final class Refusals {

    private Refusals() {
    }

    /** The error for a feature the stand-in does not have. */
    public static MongoServerError unsupported(String what) {
        return new MongoServerError(115, "CommandNotSupported", what + " is not supported by mongo-standin");
    }

    /** Throws if the command needs something the stand-in does not have. */
    static void check(String command, Document query) {
        // Drivers mark every command of a transaction with autocommit: false.
        if (query.containsKey("autocommit") || command.equals("commitTransaction") || command.equals("abortTransaction")) {
            throw new MongoServerError(20, "IllegalOperation", "multi-document transactions are not supported by mongo-standin");
        }
        if ((command.equals("create") || command.equals("collMod"))
            && query.get("changeStreamPreAndPostImages") instanceof Document images && Utils.isTrue(images.get("enabled"))) {
            throw unsupported("changeStreamPreAndPostImages (pre- and post-images)");
        }
        if (command.equals("update") && query.get("updates") instanceof List<?> updates
            && updates.stream().anyMatch(update -> update instanceof Document d && d.get("u") instanceof List)
            || command.equals("findAndModify") && query.get("update") instanceof List) {
            throw unsupported("an update with an aggregation pipeline");
        }
    }
}
