// Decodes Avro records with Java's org.apache.avro, resolving each from the schema it was
// written with to a reader schema (the subject's latest), as a Java consumer pinned to the
// newest schema would. Run as a single-file program: java -cp "<kafka libs>/*" AvroLatestRead.java
//
// Standard input, one item a line, tab-separated:
//   S <id> <base64 schema JSON>                      defines a schema
//   R <writer id> <reader id> <base64 Avro binary>   a record's body (after the wire-format header)
// Standard output, one line per R line: the decoded value as tagged JSON ({"int": n},
// {"long": n}, {"double": "text"}, {"bytes": "base64"}, {"ts": millis}, {"record": {...}},
// {"map": {...}}, strings, booleans, arrays and null as themselves), or "ERROR <message>".

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.avro.Schema;
import org.apache.avro.data.TimeConversions;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.DecoderFactory;

public class AvroLatestRead {
    public static void main(String[] args) throws Exception {
        GenericData data = new GenericData();
        data.addLogicalTypeConversion(new TimeConversions.TimestampMillisConversion());
        Map<String, Schema> schemas = new HashMap<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        Base64.Decoder b64 = Base64.getDecoder();
        for (String line; (line = in.readLine()) != null; ) {
            String[] p = line.split("\t");
            if (p[0].equals("S")) {
                // A parser per schema: the versions of a subject define the same names.
                schemas.put(p[1], new Schema.Parser().parse(new String(b64.decode(p[2]), StandardCharsets.UTF_8)));
                continue;
            }
            try {
                GenericDatumReader<Object> reader = new GenericDatumReader<>(schemas.get(p[1]), schemas.get(p[2]), data);
                Object value = reader.read(null, DecoderFactory.get().binaryDecoder(b64.decode(p[3]), null));
                StringBuilder sb = new StringBuilder();
                json(sb, value);
                out.write(sb.toString());
            } catch (Exception e) {
                out.write("ERROR " + e.toString().replace('\n', ' '));
            }
            out.newLine();
        }
        out.flush();
    }

    static void json(StringBuilder sb, Object v) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Boolean) {
            sb.append(v);
        } else if (v instanceof Integer) {
            sb.append("{\"int\":").append(v).append('}');
        } else if (v instanceof Long) {
            sb.append("{\"long\":").append(v).append('}');
        } else if (v instanceof Double || v instanceof Float) {
            sb.append("{\"double\":");
            string(sb, v.toString());
            sb.append('}');
        } else if (v instanceof CharSequence || v instanceof GenericData.EnumSymbol) {
            string(sb, v.toString());
        } else if (v instanceof ByteBuffer || v instanceof GenericData.Fixed) {
            byte[] bytes;
            if (v instanceof GenericData.Fixed) {
                bytes = ((GenericData.Fixed) v).bytes();
            } else {
                ByteBuffer b = ((ByteBuffer) v).duplicate();
                bytes = new byte[b.remaining()];
                b.get(bytes);
            }
            sb.append("{\"bytes\":\"").append(Base64.getEncoder().encodeToString(bytes)).append("\"}");
        } else if (v instanceof Instant) {
            sb.append("{\"ts\":").append(((Instant) v).toEpochMilli()).append('}');
        } else if (v instanceof GenericRecord) {
            GenericRecord r = (GenericRecord) v;
            sb.append("{\"record\":{");
            boolean first = true;
            for (Schema.Field f : r.getSchema().getFields()) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                string(sb, f.name());
                sb.append(':');
                json(sb, r.get(f.pos()));
            }
            sb.append("}}");
        } else if (v instanceof Map) {
            sb.append("{\"map\":{");
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                string(sb, e.getKey().toString());
                sb.append(':');
                json(sb, e.getValue());
            }
            sb.append("}}");
        } else if (v instanceof List) {
            sb.append('[');
            boolean first = true;
            for (Object item : (List<?>) v) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                json(sb, item);
            }
            sb.append(']');
        } else {
            throw new IllegalArgumentException("unexpected decoded value " + v.getClass());
        }
    }

    static void string(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                sb.append('\\').append(c);
            } else if (c < 0x20) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        sb.append('"');
    }
}
