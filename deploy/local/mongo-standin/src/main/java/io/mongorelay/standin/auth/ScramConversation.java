package io.mongorelay.standin.auth;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The server's side of one SCRAM conversation (RFC 5802 section 5, as MongoDB runs it through
 * saslStart and saslContinue): it answers the client-first message with a nonce, salt and
 * iteration count, then checks the client's proof and answers with the server signature.
 * Channel binding is not offered, so the only GS2 header taken is "n,,".
 */
final class ScramConversation {

    /** The client's message does not authenticate it; the reply never says why. */
    static final class Failed extends Exception {
        private static final long serialVersionUID = 1L;

        Failed(String reason) {
            super(reason);
        }
    }

    private static final String GS2_HEADER = "n,,";
    private static final SecureRandom RANDOM = new SecureRandom();

    private final Users users;
    private final String database;
    private final ScramMechanism mechanism;
    private String user;
    private Users.Credential credential;
    private String nonce;
    private String clientFirstBare;
    private String serverFirst;

    ScramConversation(Users users, String database, ScramMechanism mechanism) {
        this.users = users;
        this.database = database;
        this.mechanism = mechanism;
    }

    /** The user the conversation authenticates (known once first has run). */
    String user() {
        return user;
    }

    /** Reads client-first-message and returns server-first-message. */
    String first(String clientFirst) throws Failed {
        if (!clientFirst.startsWith(GS2_HEADER)) {
            throw new Failed("GS2 header is not n,, (no channel binding, no authzid)");
        }
        clientFirstBare = clientFirst.substring(GS2_HEADER.length());
        Map<String, String> attrs = attributes(clientFirstBare);
        String name = attrs.get("n");
        String clientNonce = attrs.get("r");
        if (name == null || clientNonce == null || clientNonce.isEmpty() || attrs.containsKey("m")) {
            throw new Failed("client-first-message lacks n= or r=, or has m=");
        }
        user = name.replace("=2C", ",").replace("=3D", "=");
        credential = users.credential(database, user, mechanism);
        if (credential == null) {
            throw new Failed("no user " + database + "." + user);
        }
        byte[] ours = new byte[24];
        RANDOM.nextBytes(ours);
        nonce = clientNonce + Base64.getEncoder().encodeToString(ours);
        serverFirst = "r=" + nonce + ",s=" + Base64.getEncoder().encodeToString(credential.salt()) + ",i=" + credential.iterations();
        return serverFirst;
    }

    /** Checks client-final-message's proof and returns server-final-message. */
    String last(String clientFinal) throws Failed {
        if (serverFirst == null) {
            throw new Failed("client-final-message before client-first-message");
        }
        int proofAt = clientFinal.lastIndexOf(",p=");
        if (proofAt < 0) {
            throw new Failed("client-final-message has no proof");
        }
        String withoutProof = clientFinal.substring(0, proofAt);
        Map<String, String> attrs = attributes(withoutProof);
        String binding = Base64.getEncoder().encodeToString(GS2_HEADER.getBytes(StandardCharsets.US_ASCII));
        if (!binding.equals(attrs.get("c")) || !nonce.equals(attrs.get("r"))) {
            throw new Failed("client-final-message's channel binding or nonce differs");
        }
        byte[] proof;
        try {
            proof = Base64.getDecoder().decode(clientFinal.substring(proofAt + 3));
        } catch (IllegalArgumentException e) {
            throw new Failed("proof is not base64");
        }
        String authMessage = clientFirstBare + "," + serverFirst + "," + withoutProof;
        byte[] signature = mechanism.hmac(credential.storedKey(), authMessage);
        if (proof.length != signature.length) {
            throw new Failed("proof has the wrong length");
        }
        // ClientKey = ClientProof XOR ClientSignature; the password was right if H(ClientKey) = StoredKey.
        byte[] clientKey = new byte[proof.length];
        for (int i = 0; i < proof.length; i++) {
            clientKey[i] = (byte) (proof[i] ^ signature[i]);
        }
        if (!MessageDigest.isEqual(mechanism.hash(clientKey), credential.storedKey())) {
            throw new Failed("wrong password");
        }
        return "v=" + Base64.getEncoder().encodeToString(mechanism.hmac(credential.serverKey(), authMessage));
    }

    /** The attributes of a SCRAM message, "a=value,b=value", in order; values keep their "=". */
    private static Map<String, String> attributes(String message) throws Failed {
        Map<String, String> out = new LinkedHashMap<>();
        for (String part : message.split(",", -1)) {
            if (part.length() < 2 || part.charAt(1) != '=') {
                throw new Failed("malformed attribute " + part);
            }
            out.putIfAbsent(part.substring(0, 1), part.substring(2));
        }
        return out;
    }
}
