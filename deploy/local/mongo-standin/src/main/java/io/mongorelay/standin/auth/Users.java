package io.mongorelay.standin.auth;

import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The users of the admin database, each with the SCRAM credentials a server stores for it (salt,
 * iteration count, StoredKey and ServerKey per mechanism, never the password). Empty means
 * authentication is off, as on a server started without --auth.
 */
public final class Users {

    /** The database every user is defined in, the one clients authenticate against by default. */
    public static final String DATABASE = "admin";

    /** What the server keeps of one user's password for one mechanism (RFC 5802, section 3). */
    record Credential(byte[] salt, int iterations, byte[] storedKey, byte[] serverKey) {
    }

    private final Map<String, Map<ScramMechanism, Credential>> credentials;

    private Users(Map<String, Map<ScramMechanism, Credential>> credentials) {
        this.credentials = credentials;
    }

    /**
     * The users of passwords (user name to password), with fresh random salts; no users when
     * passwords is empty. Derives every key now, so that a conversation costs a few HMACs rather
     * than a PBKDF2 run.
     */
    public static Users of(Map<String, String> passwords) {
        SecureRandom random = new SecureRandom();
        Map<String, Map<ScramMechanism, Credential>> all = new HashMap<>();
        passwords.forEach((user, password) -> {
            Map<ScramMechanism, Credential> byMechanism = new EnumMap<>(ScramMechanism.class);
            for (ScramMechanism m : ScramMechanism.values()) {
                byte[] salt = new byte[m == ScramMechanism.SHA_1 ? 16 : 28];
                random.nextBytes(salt);
                byte[] salted = m.saltedPassword(m.secret(user, password), salt, ScramMechanism.ITERATIONS);
                byte[] clientKey = m.hmac(salted, "Client Key");
                byMechanism.put(m, new Credential(salt, ScramMechanism.ITERATIONS, m.hash(clientKey), m.hmac(salted, "Server Key")));
            }
            all.put(user, byMechanism);
        });
        return new Users(Map.copyOf(all));
    }

    /** Whether clients must authenticate. */
    public boolean enabled() {
        return !credentials.isEmpty();
    }

    /**
     * The mechanisms user of database may authenticate with, as hello's saslSupportedMechs lists
     * them; empty for a user that does not exist.
     */
    public List<String> mechanisms(String database, String user) {
        if (!DATABASE.equals(database) || !credentials.containsKey(user)) {
            return List.of();
        }
        return credentials.get(user).keySet().stream().map(ScramMechanism::saslName).toList();
    }

    /** The credential of user in database for mechanism, or null when there is none. */
    Credential credential(String database, String user, ScramMechanism mechanism) {
        if (!DATABASE.equals(database)) {
            return null;
        }
        Map<ScramMechanism, Credential> byMechanism = credentials.get(user);
        return byMechanism == null ? null : byMechanism.get(mechanism);
    }

    /** Whether s is a password or user name the stand-in takes: printable ASCII, nothing SASLprep would change. */
    public static boolean printableAscii(String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        if (bytes.length != s.length() || s.isEmpty()) {
            return false;
        }
        for (byte b : bytes) {
            if (b < 0x20 || b > 0x7e) {
                return false;
            }
        }
        return true;
    }
}
