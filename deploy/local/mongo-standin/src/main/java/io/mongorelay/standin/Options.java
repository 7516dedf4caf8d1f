package io.mongorelay.standin;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import io.mongorelay.standin.auth.Users;

/**
 * The launcher's command line.
 *
 * @param bind the address to listen on
 * @param port the port; 0 picks a free one
 * @param oplog "bounded" (our oplog, see BoundedOplogBackend) or "stock" (the library's, kept
 *     for before/after measurements only)
 * @param oplogMaxEntries how many entries the bounded oplog keeps before dropping the oldest
 * @param users the admin database's users (name to password); none, the default, turns
 *     authentication off
 */
record Options(String bind, int port, String oplog, int oplogMaxEntries, Map<String, String> users) {

    static final String USAGE = """
        usage: java -jar mongo-standin.jar [--bind 127.0.0.1] [--port 27017]
                                           [--oplog bounded|stock] [--oplog-max-entries 1000000]
                                           [--backend memory] [--user NAME:PASSWORD]...
        """;

    static boolean wantsHelp(List<String> args) {
        return args.contains("--help") || args.contains("-h");
    }

    /** Parses the flags; throws IllegalArgumentException, with a message for the user, on a bad one. */
    static Options parse(List<String> args) {
        String bind = "127.0.0.1";
        int port = 27017;
        String oplog = "bounded";
        int maxEntries = 1_000_000;
        Map<String, String> users = new HashMap<>();
        for (int i = 0; i < args.size(); i++) {
            String flag = args.get(i);
            if (i + 1 >= args.size()) {
                throw new IllegalArgumentException(flag + " needs a value");
            }
            String value = args.get(++i);
            switch (flag) {
                case "--bind" -> bind = value;
                case "--port" -> port = number(flag, value, 0, 65535);
                case "--oplog-max-entries" -> maxEntries = number(flag, value, 1, Integer.MAX_VALUE);
                case "--oplog" -> {
                    if (!value.equals("bounded") && !value.equals("stock")) {
                        throw new IllegalArgumentException("--oplog must be bounded or stock, not " + value);
                    }
                    oplog = value;
                }
                case "--backend" -> {
                    // The H2 backend is not offered: change capture hooks into the memory
                    // backend's collections, and the tests need no persistence.
                    if (!value.equals("memory")) {
                        throw new IllegalArgumentException("--backend must be memory (h2 is not supported), not " + value);
                    }
                }
                case "--user" -> {
                    int colon = value.indexOf(':');
                    String name = colon < 0 ? "" : value.substring(0, colon);
                    String password = colon < 0 ? "" : value.substring(colon + 1);
                    if (!Users.printableAscii(name) || !Users.printableAscii(password)) {
                        throw new IllegalArgumentException("--user must be NAME:PASSWORD, both printable ASCII");
                    }
                    users.put(name, password);
                }
                default -> throw new IllegalArgumentException("unknown flag " + flag);
            }
        }
        return new Options(bind, port, oplog, maxEntries, Map.copyOf(users));
    }

    private static int number(String flag, String value, int min, int max) {
        try {
            int n = Integer.parseInt(value);
            if (n >= min && n <= max) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException(flag + " must be a number from " + min + " to " + max + ", not " + value);
    }
}
