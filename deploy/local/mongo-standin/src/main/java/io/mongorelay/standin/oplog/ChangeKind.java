package io.mongorelay.standin.oplog;

/** The kinds of change the oplog records, named by their change event operationType. */
enum ChangeKind {
    INSERT("insert"),
    UPDATE("update"),
    REPLACE("replace"),
    DELETE("delete"),
    DROP("drop"),
    RENAME("rename"),
    DROP_DATABASE("dropDatabase");

    private final String operationType;

    ChangeKind(String operationType) {
        this.operationType = operationType;
    }

    String operationType() {
        return operationType;
    }
}
