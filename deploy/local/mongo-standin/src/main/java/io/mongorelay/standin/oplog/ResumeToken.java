package io.mongorelay.standin.oplog;

import java.util.HexFormat;
import java.util.UUID;

import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;

/**
 * Resume tokens shaped like a MongoDB 6.0 server's (token version 1): {@code {_data: <hex>}},
 * where {@code _data} is the uppercase hex of a KeyString holding, in order, the cluster time,
 * the token version (1), the token type (128 for an event, 0 for a high-water mark), the
 * txnOpIndex (always 0: no transactions here), fromInvalidate, and for events the collection
 * UUID and the document key. deploy/local/README.md shows the exact bytes.
 */
final class ResumeToken {

    static final String DATA_FIELD = "_data";

    private static final int VERSION = 1;
    private static final int EVENT = 128;
    private static final int HIGH_WATER_MARK = 0;
    private static final HexFormat HEX = HexFormat.of().withUpperCase();

    /** Everything after the cluster time in a high-water-mark token. */
    private static final String HIGH_WATER_MARK_TAIL = tail(HIGH_WATER_MARK, false, null, null);

    private ResumeToken() {
    }

    /**
     * The part of an event's token that does not depend on its cluster time, computed once per
     * oplog entry before the entry is timestamped.
     */
    static String eventTail(UUID collectionUuid, Document documentKey, boolean fromInvalidate) {
        return tail(EVENT, fromInvalidate, collectionUuid, documentKey);
    }

    static String event(long clusterTime, String tail) {
        return timestampHex(clusterTime) + tail;
    }

    static String highWaterMark(long clusterTime) {
        return timestampHex(clusterTime) + HIGH_WATER_MARK_TAIL;
    }

    static Document toDocument(String data) {
        return new Document(DATA_FIELD, data);
    }

    private static String tail(int tokenType, boolean fromInvalidate, UUID collectionUuid, Document documentKey) {
        KeyString key = new KeyString()
            .appendInteger(VERSION)
            .appendInteger(tokenType)
            .appendInteger(0)
            .appendBoolean(fromInvalidate);
        if (collectionUuid != null) {
            key.append(collectionUuid);
        }
        if (documentKey != null) {
            key.append(documentKey);
        }
        return HEX.formatHex(key.end());
    }

    private static String timestampHex(long clusterTime) {
        return HEX.formatHex(new KeyString().appendTimestamp(clusterTime).end(), 0, 9);
    }

    /**
     * Reads the parts of a client's token this server needs. Only tokens of the shape above are
     * accepted: they are the only ones this server ever hands out.
     */
    static ResumePoint parse(Object token) {
        Object data = token instanceof Document document ? document.get(DATA_FIELD) : null;
        if (!(data instanceof String hex)) {
            throw new MongoServerError(40647, "Location40647",
                "Bad resume token: _data of missing or of wrong type. Expected string, got " + token);
        }
        byte[] bytes;
        try {
            bytes = HEX.parseHex(hex);
        } catch (IllegalArgumentException e) {
            throw new MongoServerError(9, "FailedToParse", "resume token string was not a valid hex string");
        }
        TokenReader reader = new TokenReader(bytes, hex);
        long clusterTime = reader.timestamp();
        reader.expectInteger(VERSION, "version");
        int tokenType = reader.integer("tokenType");
        if (tokenType != EVENT && tokenType != HIGH_WATER_MARK) {
            throw reader.invalid("token type " + tokenType + " not recognized");
        }
        reader.expectInteger(0, "txnOpIndex");
        boolean fromInvalidate = reader.bool("fromInvalidate");
        return new ResumePoint(clusterTime, tokenType == HIGH_WATER_MARK, fromInvalidate, hex.toUpperCase());
    }

    /** Where a token says a stream got to. */
    record ResumePoint(long clusterTime, boolean highWaterMark, boolean fromInvalidate, String data) {
    }

    /** Reads the leading fields of a token; the UUID and document key are not needed. */
    private static final class TokenReader {
        private final byte[] bytes;
        private final String hex;
        private int offset;

        TokenReader(byte[] bytes, String hex) {
            this.bytes = bytes;
            this.hex = hex;
        }

        long timestamp() {
            if (next() != KeyString.CTYPE_TIMESTAMP) {
                throw invalid("it does not start with a timestamp");
            }
            long value = 0;
            for (int i = 0; i < 8; i++) {
                value = value << 8 | next();
            }
            return value;
        }

        int integer(String field) {
            int ctype = next();
            if (ctype == KeyString.NUMERIC_ZERO) {
                return 0;
            }
            if (ctype < KeyString.POSITIVE_1_BYTE_INT || ctype > KeyString.POSITIVE_1_BYTE_INT + 3) {
                throw invalid(field + " is not a small non-negative integer");
            }
            int shifted = 0;
            for (int i = KeyString.POSITIVE_1_BYTE_INT; i <= ctype; i++) {
                shifted = shifted << 8 | next();
            }
            return shifted >>> 1;
        }

        void expectInteger(int expected, String field) {
            int actual = integer(field);
            if (actual != expected) {
                throw invalid(field + " is " + actual + ", expected " + expected);
            }
        }

        boolean bool(String field) {
            int ctype = next();
            if (ctype != KeyString.BOOL_TRUE && ctype != KeyString.BOOL_FALSE) {
                throw invalid(field + " is not a boolean");
            }
            return ctype == KeyString.BOOL_TRUE;
        }

        private int next() {
            if (offset >= bytes.length) {
                throw invalid("it is truncated");
            }
            return bytes[offset++] & 0xFF;
        }

        MongoServerError invalid(String reason) {
            return new MongoServerError(2, "BadValue", "Invalid resume token {_data: \"" + hex + "\"}: " + reason);
        }
    }
}
