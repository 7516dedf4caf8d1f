package io.mongorelay.standin.auth;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Set;

import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.bson.BinData;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;

/**
 * One connection's authentication, as a server started with --auth keeps it: the SCRAM
 * conversation of saslStart and saslContinue, and whether the connection has authenticated.
 * Until it has, every command but the handshake, the conversation and a few harmless ones fails
 * with 13 Unauthorized. With no users it lets everything through. Used by one connection's
 * command thread only.
 */
public final class Authentication {

    /** The commands a real server runs for a client that has not authenticated. */
    private static final Set<String> OPEN_COMMANDS = Set.of(
        "hello", "ismaster", "saslstart", "saslcontinue", "ping", "buildinfo", "getnonce", "logout");

    /** Each connection has at most one conversation at a time, so its id is always 1. */
    private static final int CONVERSATION_ID = 1;

    private final Users users;
    private ScramConversation conversation;
    private boolean skipEmptyExchange;
    private boolean proven;
    private String authenticatedUser;

    public Authentication(Users users) {
        this.users = users;
    }

    /**
     * Runs saslStart or saslContinue and returns its reply, or returns null for any other
     * command, after checking the connection may run it (throws 13 Unauthorized if not).
     */
    public Document handle(String database, String command, Document query) {
        if (!users.enabled()) {
            return null;
        }
        switch (command) {
            case "saslStart":
                return start(database, query);
            case "saslContinue":
                return proceed(query);
            default:
                if (authenticatedUser == null && !OPEN_COMMANDS.contains(command.toLowerCase())) {
                    throw new MongoServerError(13, "Unauthorized", "Command " + command + " requires authentication");
                }
                return null;
        }
    }

    /**
     * Adds saslSupportedMechs to a hello reply when the client asked which mechanisms its user
     * ("db.user") has, as drivers do to choose between SCRAM-SHA-256 and SCRAM-SHA-1.
     */
    public void describeMechanisms(Document hello, Document reply) {
        if (!users.enabled() || !(hello.get("saslSupportedMechs") instanceof String namespaced)) {
            return;
        }
        int dot = namespaced.indexOf('.');
        if (dot < 0) {
            return;
        }
        List<String> mechanisms = users.mechanisms(namespaced.substring(0, dot), namespaced.substring(dot + 1));
        if (!mechanisms.isEmpty()) {
            reply.append("saslSupportedMechs", mechanisms);
        }
    }

    private Document start(String database, Document query) {
        String name = String.valueOf(query.get("mechanism"));
        ScramMechanism mechanism = ScramMechanism.bySaslName(name);
        if (mechanism == null) {
            throw new MongoServerError(334, "MechanismUnavailable",
                "Received authentication for mechanism " + name + " which is not enabled");
        }
        skipEmptyExchange = query.get("options") instanceof Document options && Utils.isTrue(options.get("skipEmptyExchange"));
        proven = false;
        conversation = new ScramConversation(users, database, mechanism);
        try {
            return reply(false, conversation.first(payload(query)));
        } catch (ScramConversation.Failed e) {
            throw failed();
        }
    }

    private Document proceed(Document query) {
        if (conversation == null || !Integer.valueOf(CONVERSATION_ID).equals(number(query.get("conversationId")))) {
            throw new MongoServerError(17, "ProtocolError", "No SASL session state found");
        }
        if (proven) {
            // The client's empty message after the server's final one, when it did not skip that exchange.
            return finish("");
        }
        try {
            String serverFinal = conversation.last(payload(query));
            proven = true;
            return skipEmptyExchange ? finish(serverFinal) : reply(false, serverFinal);
        } catch (ScramConversation.Failed e) {
            throw failed();
        }
    }

    private Document finish(String payload) {
        authenticatedUser = conversation.user();
        conversation = null;
        return reply(true, payload);
    }

    private MongoServerError failed() {
        conversation = null;
        return new MongoServerError(18, "AuthenticationFailed", "Authentication failed.");
    }

    private static Document reply(boolean done, String payload) {
        Document reply = new Document("conversationId", CONVERSATION_ID)
            .append("done", done)
            .append("payload", new BinData(payload.getBytes(StandardCharsets.UTF_8)));
        Utils.markOkay(reply);
        return reply;
    }

    private static String payload(Document query) {
        if (!(query.get("payload") instanceof BinData data)) {
            throw new MongoServerError(14, "TypeMismatch", "payload must be BinData");
        }
        return new String(data.getData(), StandardCharsets.UTF_8);
    }

    private static Integer number(Object value) {
        return value instanceof Number n ? n.intValue() : null;
    }
}
