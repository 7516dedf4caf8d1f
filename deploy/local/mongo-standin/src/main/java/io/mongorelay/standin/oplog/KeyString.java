package io.mongorelay.standin.oplog;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import de.bwaldvogel.mongo.bson.BinData;
import de.bwaldvogel.mongo.bson.BsonJavaScript;
import de.bwaldvogel.mongo.bson.BsonRegularExpression;
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Decimal128;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.LegacyUUID;
import de.bwaldvogel.mongo.bson.MaxKey;
import de.bwaldvogel.mongo.bson.MinKey;
import de.bwaldvogel.mongo.bson.ObjectId;

/**
 * Writes BSON values in MongoDB's KeyString format (version 1, ascending order), the encoding a
 * real server uses for the {@code _data} of resume tokens.
 *
 * <p>Written from the format's description in MongoDB's key_string.cpp: every value starts with a
 * "CType" byte that orders the types, followed by an order-preserving body. Type bits (which tell
 * int32, int64 and double apart) are not produced: the tokens never carry {@code _typeBits}.
 * Decimal128 values are written as their nearest double, without MongoDB's decimal continuation.
 */
final class KeyString {

    // CType bytes: the first byte of every encoded value.
    private static final int MIN_KEY = 10;
    private static final int NULLISH = 20;
    private static final int NUMERIC = 30;
    private static final int STRING_LIKE = 60;
    private static final int OBJECT = 70;
    private static final int ARRAY = 80;
    private static final int BIN_DATA = 90;
    private static final int OID = 100;
    private static final int BOOL = 110;
    private static final int DATE = 120;
    private static final int TIMESTAMP = 130;
    private static final int REGEX = 140;
    private static final int CODE = 160;
    private static final int MAX_KEY = 240;

    // Numbers: the CType also says the sign and how many bytes the magnitude takes.
    private static final int NUMERIC_NAN = NUMERIC;
    private static final int NEGATIVE_LARGE_MAGNITUDE = NUMERIC + 1;
    private static final int NEGATIVE_8_BYTE_INT = NUMERIC + 2;
    private static final int NEGATIVE_1_BYTE_INT = NUMERIC + 9;
    private static final int NEGATIVE_SMALL_MAGNITUDE = NUMERIC + 10;
    static final int NUMERIC_ZERO = NUMERIC + 11;
    private static final int POSITIVE_SMALL_MAGNITUDE = NUMERIC + 12;
    static final int POSITIVE_1_BYTE_INT = NUMERIC + 13;
    static final int POSITIVE_8_BYTE_INT = NUMERIC + 20;
    private static final int POSITIVE_LARGE_MAGNITUDE = NUMERIC + 21;

    static final int BOOL_FALSE = BOOL;
    static final int BOOL_TRUE = BOOL + 1;
    static final int CTYPE_TIMESTAMP = TIMESTAMP;

    /** Closes a key. */
    static final int END = 4;

    private static final double TWO_POW_63 = 0x1p63;
    private static final double TINIEST_WITH_TWO_BIT_MARKER = 0x1p-255;
    private static final double TINY_EXPONENT_SHIFT = 0x1p256;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream(64);

    KeyString appendTimestamp(long timestamp) {
        out.write(TIMESTAMP);
        writeLong(timestamp);
        return this;
    }

    KeyString appendInteger(long value) {
        if (value == Long.MIN_VALUE) {
            // -2^63 has no positive int64 magnitude; MongoDB writes it as a double.
            appendLargeDouble(value);
        } else if (value == 0) {
            out.write(NUMERIC_ZERO);
        } else {
            appendShiftedInteger(Math.abs(value) << 1, value < 0);
        }
        return this;
    }

    KeyString appendBoolean(boolean value) {
        out.write(value ? BOOL_TRUE : BOOL_FALSE);
        return this;
    }

    KeyString append(Object value) {
        if (value == null) {
            out.write(NULLISH);
        } else if (value instanceof Integer || value instanceof Long) {
            appendInteger(((Number) value).longValue());
        } else if (value instanceof Double d) {
            appendDouble(d);
        } else if (value instanceof Decimal128 d) {
            appendDouble(d.doubleValue());
        } else if (value instanceof String s) {
            out.write(STRING_LIKE);
            appendStringBody(s);
        } else if (value instanceof Document document) {
            appendObject(document);
        } else if (value instanceof List<?> list) {
            out.write(ARRAY);
            list.forEach(this::append);
            out.write(0);
        } else if (value instanceof ObjectId id) {
            out.write(OID);
            out.writeBytes(id.toByteArray());
        } else if (value instanceof Boolean b) {
            appendBoolean(b);
        } else if (value instanceof Instant instant) {
            out.write(DATE);
            writeLong(instant.toEpochMilli() ^ Long.MIN_VALUE);
        } else if (value instanceof BsonTimestamp timestamp) {
            appendTimestamp(timestamp.getValue());
        } else if (value instanceof UUID uuid) {
            appendBinData(4, uuidBytes(uuid.getMostSignificantBits(), uuid.getLeastSignificantBits(), false));
        } else if (value instanceof LegacyUUID legacy) {
            UUID uuid = legacy.getUuid();
            appendBinData(3, uuidBytes(uuid.getMostSignificantBits(), uuid.getLeastSignificantBits(), true));
        } else if (value instanceof BinData binData) {
            appendBinData(0, binData.getData());
        } else if (value instanceof BsonRegularExpression regex) {
            out.write(REGEX);
            writeCString(regex.getPattern());
            writeCString(regex.getOptions());
        } else if (value instanceof BsonJavaScript code) {
            out.write(CODE);
            appendStringBody(code.getCode());
        } else if (value instanceof MinKey) {
            out.write(MIN_KEY);
        } else if (value instanceof MaxKey) {
            out.write(MAX_KEY);
        } else {
            throw unsupported(value);
        }
        return this;
    }

    /** Closes the key and returns its bytes. */
    byte[] end() {
        out.write(END);
        return out.toByteArray();
    }

    private void appendObject(Document document) {
        out.write(OBJECT);
        for (Map.Entry<String, Object> field : document.entrySet()) {
            // Fields sort by (type, name, value): the generic type byte comes first.
            out.write(genericType(field.getValue()));
            writeCString(field.getKey());
            append(field.getValue());
        }
        out.write(0);
    }

    private static int genericType(Object value) {
        if (value == null) {
            return NULLISH;
        } else if (value instanceof Number) {
            return NUMERIC;
        } else if (value instanceof String) {
            return STRING_LIKE;
        } else if (value instanceof Document) {
            return OBJECT;
        } else if (value instanceof List) {
            return ARRAY;
        } else if (value instanceof BinData || value instanceof UUID || value instanceof LegacyUUID) {
            return BIN_DATA;
        } else if (value instanceof ObjectId) {
            return OID;
        } else if (value instanceof Boolean) {
            return BOOL;
        } else if (value instanceof Instant) {
            return DATE;
        } else if (value instanceof BsonTimestamp) {
            return TIMESTAMP;
        } else if (value instanceof BsonRegularExpression) {
            return REGEX;
        } else if (value instanceof BsonJavaScript) {
            return CODE;
        } else if (value instanceof MinKey) {
            return MIN_KEY;
        } else if (value instanceof MaxKey) {
            return MAX_KEY;
        }
        throw unsupported(value);
    }

    private static IllegalArgumentException unsupported(Object value) {
        return new IllegalArgumentException("cannot write " + value.getClass().getName() + " into a resume token");
    }

    /** Strings end with a NUL byte, so NUL bytes inside them are written as 00 FF. */
    private void appendStringBody(String value) {
        for (byte b : value.getBytes(StandardCharsets.UTF_8)) {
            out.write(b);
            if (b == 0) {
                out.write(0xFF);
            }
        }
        out.write(0);
    }

    private void writeCString(String value) {
        out.writeBytes(value.getBytes(StandardCharsets.UTF_8));
        out.write(0);
    }

    private void appendBinData(int subtype, byte[] data) {
        out.write(BIN_DATA);
        if (data.length < 0xFF) {
            out.write(data.length);
        } else {
            out.write(0xFF);
            writeInt(data.length);
        }
        out.write(subtype);
        out.writeBytes(data);
    }

    private static byte[] uuidBytes(long most, long least, boolean littleEndianHalves) {
        byte[] bytes = new byte[16];
        for (int i = 0; i < 8; i++) {
            int shift = littleEndianHalves ? 8 * i : 56 - 8 * i;
            bytes[i] = (byte) (most >>> shift);
            bytes[8 + i] = (byte) (least >>> shift);
        }
        return bytes;
    }

    /**
     * Writes an integer magnitude already shifted left by one (the low bit says whether a fraction
     * follows): a CType that gives sign and length, then the significant bytes, big-endian,
     * inverted for negative numbers so that they sort backwards.
     */
    private void appendShiftedInteger(long shifted, boolean negative) {
        int bytes = (64 - Long.numberOfLeadingZeros(shifted) + 7) / 8;
        out.write(negative ? NEGATIVE_1_BYTE_INT - (bytes - 1) : POSITIVE_1_BYTE_INT + (bytes - 1));
        for (int i = bytes - 1; i >= 0; i--) {
            int b = (int) (shifted >>> (8 * i)) & 0xFF;
            out.write(negative ? ~b & 0xFF : b);
        }
    }

    private void appendDouble(double value) {
        if (Double.isNaN(value)) {
            out.write(NUMERIC_NAN);
            return;
        }
        boolean negative = value < 0;
        double magnitude = Math.abs(value);
        if (magnitude == 0) {
            out.write(NUMERIC_ZERO);
        } else if (magnitude < 1) {
            appendSmallDouble(magnitude, negative);
        } else if (magnitude >= TWO_POW_63) {
            appendLargeDouble(value);
        } else {
            long integerPart = (long) magnitude;
            if (integerPart == magnitude) {
                appendShiftedInteger(integerPart << 1, negative);
            } else {
                appendFractionalDouble(magnitude, integerPart, negative);
            }
        }
    }

    /**
     * A number with an integer part and a fraction: the CType gives the number of fraction bytes;
     * eight bytes hold (2 * integer part + 1) followed by the fraction and a two-bit marker that
     * is zero for a plain double.
     */
    private void appendFractionalDouble(double magnitude, long integerPart, boolean negative) {
        int fractionBytes = Long.numberOfLeadingZeros(integerPart << 1) / 8;
        out.write(negative ? NEGATIVE_8_BYTE_INT + fractionBytes : POSITIVE_8_BYTE_INT - fractionBytes);
        long encoded = (long) Math.scalb(magnitude, 8 * fractionBytes);
        encoded += (integerPart + 1) << (8 * fractionBytes);
        writeLong(negative ? ~encoded : encoded);
    }

    private void appendSmallDouble(double magnitude, boolean negative) {
        out.write(negative ? NEGATIVE_SMALL_MAGNITUDE : POSITIVE_SMALL_MAGNITUDE);
        long encoded;
        if (magnitude >= TINIEST_WITH_TWO_BIT_MARKER) {
            encoded = Double.doubleToRawLongBits(magnitude) << 2;
        } else {
            encoded = (Double.doubleToRawLongBits(magnitude * TINY_EXPONENT_SHIFT) << 1) + (1L << 62);
        }
        writeLong(negative ? ~encoded : encoded);
    }

    private void appendLargeDouble(double value) {
        out.write(value > 0 ? POSITIVE_LARGE_MAGNITUDE : NEGATIVE_LARGE_MAGNITUDE);
        long encoded = Double.isInfinite(value) ? ~0L : (Double.doubleToRawLongBits(value) << 1) & Long.MAX_VALUE;
        writeLong(value > 0 ? encoded : ~encoded);
    }

    private void writeLong(long value) {
        for (int shift = 56; shift >= 0; shift -= 8) {
            out.write((int) (value >>> shift) & 0xFF);
        }
    }

    private void writeInt(int value) {
        for (int shift = 24; shift >= 0; shift -= 8) {
            out.write((value >>> shift) & 0xFF);
        }
    }
}
