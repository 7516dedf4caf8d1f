package io.mongorelay.standin;

import java.net.InetSocketAddress;
import java.util.List;

import io.mongorelay.standin.auth.Users;
import io.mongorelay.standin.oplog.BoundedOplogBackend;

/**
 * Starts the MongoDB stand-in and prints {@code mongo-standin listening on <host>:<port>} once it
 * accepts connections. Runs until SIGTERM (or SIGINT), then closes its connections and exits.
 */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        if (Options.wantsHelp(List.of(args))) {
            System.out.print(Options.USAGE);
            return;
        }
        Options options;
        try {
            options = Options.parse(List.of(args));
        } catch (IllegalArgumentException e) {
            System.err.println("mongo-standin: " + e.getMessage());
            System.err.print(Options.USAGE);
            System.exit(2);
            return;
        }

        ClusterClock clock = new ClusterClock();
        StandinBackend backend;
        if (options.oplog().equals("stock")) {
            backend = new StandinBackend();
            // The library's own oplog: a collection, local.oplog.rs.
            backend.enableOplog();
        } else {
            backend = new BoundedOplogBackend(clock, options.oplogMaxEntries());
        }
        StandinServer server = new StandinServer(backend, clock, Users.of(options.users()));
        InetSocketAddress address;
        try {
            address = server.bind(options.bind(), options.port());
        } catch (IllegalStateException e) {
            System.err.println("mongo-standin: " + e.getMessage());
            System.exit(1);
            return;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(server::close, "mongo-standin-shutdown"));
        System.out.println("mongo-standin listening on " + options.bind() + ":" + address.getPort());
        System.out.flush();
        // Netty's event loop threads keep the process alive until the shutdown hook stops them.
    }
}
