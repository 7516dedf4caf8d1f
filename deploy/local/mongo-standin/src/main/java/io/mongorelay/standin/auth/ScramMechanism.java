package io.mongorelay.standin.auth;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.HexFormat;

import javax.crypto.Mac;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The two SCRAM mechanisms MongoDB offers (RFC 5802 with SHA-1, RFC 7677 with SHA-256), with the
 * primitives a server needs: Hi (PBKDF2), HMAC and H.
 */
public enum ScramMechanism {

    /** Keyed, as MongoDB keys it, on hex(MD5(user + ":mongo:" + password)) rather than the password. */
    SHA_1("SCRAM-SHA-1", "SHA-1", "HmacSHA1", "PBKDF2WithHmacSHA1", 20),
    /**
     * Keyed on the SASLprep'd password; the stand-in accepts printable ASCII passwords only,
     * which SASLprep leaves as they are.
     */
    SHA_256("SCRAM-SHA-256", "SHA-256", "HmacSHA256", "PBKDF2WithHmacSHA256", 32);

    /** The iteration count a 6.0 server uses for SCRAM-SHA-256; drivers refuse fewer than 4096. */
    static final int ITERATIONS = 15_000;

    private final String saslName;
    private final String digest;
    private final String hmac;
    private final String pbkdf2;
    private final int keyBytes;

    ScramMechanism(String saslName, String digest, String hmac, String pbkdf2, int keyBytes) {
        this.saslName = saslName;
        this.digest = digest;
        this.hmac = hmac;
        this.pbkdf2 = pbkdf2;
        this.keyBytes = keyBytes;
    }

    /** The name in saslStart's mechanism and in hello's saslSupportedMechs. */
    public String saslName() {
        return saslName;
    }

    /** The mechanism saslStart names, or null for one the stand-in does not offer. */
    public static ScramMechanism bySaslName(String name) {
        for (ScramMechanism m : values()) {
            if (m.saslName.equals(name)) {
                return m;
            }
        }
        return null;
    }

    /** The secret the salted password is derived from, as the server stores it for this mechanism. */
    String secret(String user, String password) {
        if (this == SHA_256) {
            return password;
        }
        return HexFormat.of().formatHex(hash("MD5", (user + ":mongo:" + password).getBytes(StandardCharsets.UTF_8)));
    }

    /** Hi(secret, salt, iterations): PBKDF2 with this mechanism's HMAC. */
    byte[] saltedPassword(String secret, byte[] salt, int iterations) {
        try {
            PBEKeySpec spec = new PBEKeySpec(secret.toCharArray(), salt, iterations, keyBytes * 8);
            return SecretKeyFactory.getInstance(pbkdf2).generateSecret(spec).getEncoded();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(pbkdf2 + " is missing from this JVM", e);
        }
    }

    byte[] hmac(byte[] key, String message) {
        try {
            Mac mac = Mac.getInstance(hmac);
            mac.init(new SecretKeySpec(key, hmac));
            return mac.doFinal(message.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(hmac + " is missing from this JVM", e);
        }
    }

    byte[] hash(byte[] data) {
        return hash(digest, data);
    }

    private static byte[] hash(String algorithm, byte[] data) {
        try {
            return MessageDigest.getInstance(algorithm).digest(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(algorithm + " is missing from this JVM", e);
        }
    }
}
