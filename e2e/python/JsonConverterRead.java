import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Map;

import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.json.JsonConverter;

/**
 * Reads records as a Kafka Connect sink with value.converter=JsonConverter and
 * schemas.enable=true does, for test_shapes.py.
 *
 * <p>Each input line is "topic TAB base64(value)". Each output line is the Connect value
 * written back without its schema (JsonConverter, schemas.enable=false), or "ERROR message"
 * when the converter refuses the record: its schema, or a payload that does not fit it.
 *
 * <p>Run with the Kafka libraries on the class path: java -cp "$MONGORELAY_TEST_KAFKA_LIBS/*"
 * JsonConverterRead.java
 */
public class JsonConverterRead {
    public static void main(String[] args) throws Exception {
        JsonConverter withSchemas = new JsonConverter();
        withSchemas.configure(Map.of("schemas.enable", "true"), false);
        JsonConverter plain = new JsonConverter();
        plain.configure(Map.of("schemas.enable", "false"), false);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            String[] parts = line.split("\t", 2);
            try {
                SchemaAndValue read = withSchemas.toConnectData(parts[0], Base64.getDecoder().decode(parts[1]));
                byte[] back = plain.fromConnectData(parts[0], read.schema(), read.value());
                System.out.println(new String(back, StandardCharsets.UTF_8));
            } catch (RuntimeException e) {
                System.out.println("ERROR " + String.valueOf(e).replace('\n', ' '));
            }
        }
    }
}
