package io.mongorelay.standin;

import java.util.List;

import de.bwaldvogel.mongo.exception.MongoServerError;

/**
 * A command error that carries error labels, as a real server attaches them (drivers decide
 * from "NonResumableChangeStreamError" whether a change stream may resume).
 */
public class LabeledError extends MongoServerError {

    private static final long serialVersionUID = 1L;

    private final List<String> labels;

    public LabeledError(int code, String codeName, String message, List<String> labels) {
        super(code, codeName, message);
        this.labels = List.copyOf(labels);
    }

    public List<String> labels() {
        return labels;
    }
}
