// Package worker runs a mongorelay node: its configuration, its wiring of Kafka, MongoDB and
// the schema registry, and the tasks it owns.
package worker

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/internal/httpauth"
	"github.com/mongorelay/mongorelay/internal/kafkaconn"
)

// Config is a node's configuration (DESIGN.md 9). Build it with ParseFlags (standalone) or
// ParseWorkerFlags (a cluster node), which apply, in order of precedence, command-line flags,
// MONGORELAY_* environment variables, the YAML file of --config (cluster nodes) and defaults.
type Config struct {
	KafkaBrokers []string
	// KafkaSecurity is how every Kafka client connects: TLS and SASL (DESIGN.md 14).
	KafkaSecurity  kafkaconn.Security
	OffsetsTopic   string
	SchemasTopic   string
	RegistryListen string
	// ReplicationFactor is used for the topics the node creates for itself (offsets, schemas);
	// -1 leaves it to the broker's default.replication.factor.
	ReplicationFactor int
	LogLevel          slog.Level
	LogFormat         string
	ShutdownTimeout   time.Duration
	// Compression is the codec of every task's record batches (producer.compression.type).
	Compression kgo.CompressionCodec
	// TransactionTimeout is every task producer's transaction.timeout.ms.
	TransactionTimeout time.Duration

	// HTTPListen is the REST API's address.
	HTTPListen string

	// How the REST API and the schema registry are secured (DESIGN.md 14): both serve HTTPS
	// with HTTPTLSCert and HTTPTLSKey ("": plain HTTP) and take the users of HTTPAuthToken
	// (an admin) and HTTPAuthBasicFile. With neither they take anyone, and so listen on
	// loopback only unless HTTPAuthInsecure.
	HTTPTLSCert       string
	HTTPTLSKey        string
	HTTPAuthToken     string
	HTTPAuthBasicFile string
	HTTPAuthInsecure  bool
	// RegistryAuthReads makes the registry's reads take a user too; else they are open.
	RegistryAuthReads bool
	// HTTPTLSCA is what a cluster node trusts when it calls other nodes' REST APIs, which
	// serve HTTPS when it does: a PEM file of CAs, "" for the system's.
	HTTPTLSCA string

	// The cluster node's keys (mongorelay worker); zero in standalone mode.

	NodeID    string // "": the id kept in DataDir, or a new one
	DataDir   string
	ClusterID string
	// ClusterSecret is what every node-to-node call carries and requires ("": none).
	ClusterSecret string
	// ClusterTLSCert, ClusterTLSKey and ClusterTLSCA make Raft run over mutual TLS: this
	// node's certificate and key, and the CA that signs every node's ("": plain TCP).
	ClusterTLSCert    string
	ClusterTLSKey     string
	ClusterTLSCA      string
	HTTPAdvertise     string // "": derived from HTTPListen once bound
	RaftListen        string
	RaftAdvertise     string // "": derived from RaftListen
	Bootstrap         bool
	Peers             []coordinator.Peer
	Join              []string // HTTP addresses of members to ask to be added
	RaftVoters        int
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	Lease             time.Duration
	// RebalanceDelay is how long this node's tasks wait for it after a clean stop, which it
	// tells the leader in its farewell: 0 hands them over at once.
	RebalanceDelay time.Duration

	// RaftSnapshotThreshold and RaftSnapshotInterval say when Raft compacts its log into a
	// snapshot (coordinator.Config).
	RaftSnapshotThreshold uint64
	RaftSnapshotInterval  time.Duration
}

// setting is one configuration key. Its flag is the name with '.' turned into '-'
// (--registry-listen), and its environment variable MONGORELAY_ followed by the name in upper
// case with '.' and '-' turned into '_' (MONGORELAY_REGISTRY_LISTEN).
type setting struct {
	name  string
	alias string // a short flag name, where one is customary
	def   string
	doc   string
	apply func(c *Config, v string) error
	// authDef, when set, is the default instead of def on a cluster node whose REST API
	// takes users only (http.auth.*): the listeners' defaults bind loopback without it.
	authDef string
	// boolean makes the flag a switch: --bootstrap alone means true.
	boolean bool
}

// settings lists every key a node understands, with its default and why one would change it.
func settings() []setting {
	return append(commonSettings(), clusterSettings()...)
}

// commonSettings are the keys of both standalone and cluster nodes.
func commonSettings() []setting {
	return append(kafkaSettings(), []setting{
		{name: "offsets.topic", doc: "compacted topic holding each task's resume position; default <cluster.id>-offsets " +
			"(mongorelay-offsets for the default cluster.id, mongorelay-standalone-offsets for a standalone process); " +
			"stamped with its cluster.id, so a node of another cluster refuses it",
			apply: func(c *Config, v string) error { c.OffsetsTopic = v; return nil }},
		{name: "schemas.topic", doc: "compacted topic holding the built-in schema registry (standalone); default <cluster.id>-schemas " +
			"(mongorelay-standalone-schemas for a standalone process); stamped with its cluster.id, so a node of another cluster refuses it",
			apply: func(c *Config, v string) error { c.SchemasTopic = v; return nil }},
		{name: "http.listen", def: "127.0.0.1:8083", authDef: ":8083",
			doc: "address of the REST API (Kafka Connect's port); loopback unless http.auth.* is set: an address other hosts reach " +
				"without http.auth.* is refused unless http.auth.insecure=true",
			apply: func(c *Config, v string) error { c.HTTPListen = v; return checkListen(v) }},
		{name: "registry.listen", def: "127.0.0.1:8081", authDef: ":8081",
			doc:   "address of the built-in Confluent-compatible schema registry; loopback unless http.auth.* is set, as http.listen",
			apply: func(c *Config, v string) error { c.RegistryListen = v; return checkListen(v) }},
		{name: "http.tls.cert",
			doc: "PEM certificate (chain) the REST API and the schema registry serve HTTPS with; empty: plain HTTP. " +
				"Other nodes check it against the host of http.advertise (an IP needs an IP SAN); set it on every node or none",
			apply: func(c *Config, v string) error { c.HTTPTLSCert = v; return nil }},
		{name: "http.tls.key", doc: "PEM private key of http.tls.cert",
			apply: func(c *Config, v string) error { c.HTTPTLSKey = v; return nil }},
		{name: "http.auth.token",
			doc: "admin bearer token (Authorization: Bearer <token>), which may read and write on the REST API and the schema registry; " +
				"at least 16 characters, the same on every node (a secret: prefer the environment variable)",
			apply: func(c *Config, v string) error {
				c.HTTPAuthToken = v
				if v == "" {
					return nil
				}
				return httpauth.CheckToken(v)
			}},
		{name: "http.auth.basic.file",
			doc: "file of HTTP Basic users, one a line: user: password,admin or user: password,read-only " +
				"(Kafka Connect's BasicAuthSecurityRestExtension file); the same on every node, read at start",
			apply: func(c *Config, v string) error { c.HTTPAuthBasicFile = v; return nil }},
		{name: "http.auth.insecure", boolean: true, def: "false",
			doc: "let http.listen and registry.listen take requests from other hosts without http.auth.*: " +
				"anyone who reaches them may change connectors and schemas (logged as a warning at start)",
			apply: func(c *Config, v string) (err error) {
				c.HTTPAuthInsecure, err = parseBool(v)
				return err
			}},
		{name: "registry.auth.reads", boolean: true, def: "false",
			doc: "with http.auth.*, the schema registry's reads need a user too; else they are open to consumers (writes always need an admin)",
			apply: func(c *Config, v string) (err error) {
				c.RegistryAuthReads, err = parseBool(v)
				return err
			}},
		{name: "topic.replication.factor", def: "-1", doc: "replication factor of the offsets and schemas topics (-1: broker default)",
			apply: func(c *Config, v string) error {
				_, err := fmt.Sscan(v, &c.ReplicationFactor)
				if err != nil || c.ReplicationFactor == 0 || c.ReplicationFactor < -1 {
					return fmt.Errorf("%q is not a replication factor: give -1 or a positive number", v)
				}
				return nil
			}},
		{name: "producer.compression.type", def: "none",
			doc: "compression of the records tasks write: none, gzip, snappy, lz4 or zstd (Kafka's default is none)",
			apply: func(c *Config, v string) (err error) {
				c.Compression, err = parseCompression(v)
				return err
			}},
		{name: "transaction.timeout.ms", def: "60000",
			doc: "how long a task's transaction may stay open before the brokers abort it, in ms (1000 to 900000, " +
				"the brokers' default transaction.max.timeout.ms). A transaction left open by a killed node holds back " +
				"every read_committed read of the offsets topic, and so every task's start, for up to this long; " +
				"a task's transactions last well under a second",
			apply: func(c *Config, v string) error {
				ms, err := strconv.Atoi(v)
				if err != nil || ms < minTxnTimeoutMs || ms > maxTxnTimeoutMs {
					return fmt.Errorf("%q is out of range: give a number of milliseconds from %d to %d", v, minTxnTimeoutMs, maxTxnTimeoutMs)
				}
				c.TransactionTimeout = time.Duration(ms) * time.Millisecond
				return nil
			}},
		{name: "shutdown.timeout", def: "30s", doc: "how long a clean shutdown may take to flush records and commit offsets",
			apply: func(c *Config, v string) (err error) {
				c.ShutdownTimeout, err = time.ParseDuration(v)
				if err != nil || c.ShutdownTimeout <= 0 {
					return fmt.Errorf("%q is not a positive duration such as 30s", v)
				}
				return nil
			}},
		{name: "log.level", def: "info", doc: "debug, info, warn or error",
			apply: func(c *Config, v string) error {
				if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
					return fmt.Errorf("%q is not one of debug, info, warn, error", v)
				}
				return nil
			}},
		{name: "log.format", def: "text", doc: "text or json",
			apply: func(c *Config, v string) error {
				if v != "text" && v != "json" {
					return fmt.Errorf("%q is not one of text, json", v)
				}
				c.LogFormat = v
				return nil
			}},
	}...)
}

// kafkaSettings are how every Kafka client reaches the brokers: their addresses and Kafka's
// own client security keys under "kafka." (DESIGN.md 14), checked together by
// kafkaconn.Security.Check once all are read.
func kafkaSettings() []setting {
	sec := func(name, def, doc string, field func(*kafkaconn.Security) *string) setting {
		return setting{name: name, def: def, doc: doc, apply: func(c *Config, v string) error {
			*field(&c.KafkaSecurity) = v
			return nil
		}}
	}
	upper := func(name, def, doc string, field func(*kafkaconn.Security) *string) setting {
		s := sec(name, def, doc, field)
		s.apply = func(c *Config, v string) error { *field(&c.KafkaSecurity) = strings.ToUpper(v); return nil }
		return s
	}
	return []setting{
		{name: "kafka.bootstrap.servers", alias: "kafka", doc: "comma-separated Kafka brokers (required)",
			apply: func(c *Config, v string) error {
				c.KafkaBrokers = splitList(v)
				if len(c.KafkaBrokers) == 0 {
					return errors.New("is required: give --kafka host:port[,host:port]")
				}
				return nil
			}},
		upper(kafkaconn.KeyProtocol, "PLAINTEXT", "PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (TLS and SASL), as the brokers' listener",
			func(s *kafkaconn.Security) *string { return &s.Protocol }),
		upper(kafkaconn.KeyMechanism, "", "SASL mechanism with SASL_*: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
			func(s *kafkaconn.Security) *string { return &s.Mechanism }),
		sec(kafkaconn.KeyUsername, "", "SASL user for PLAIN and SCRAM",
			func(s *kafkaconn.Security) *string { return &s.Username }),
		sec(kafkaconn.KeyPassword, "", "SASL password for PLAIN and SCRAM (a secret: prefer the environment variable)",
			func(s *kafkaconn.Security) *string { return &s.Password }),
		sec(kafkaconn.KeyJAAS, "", `Java's sasl.jaas.config line for PLAIN or SCRAM, instead of username and password: ...ScramLoginModule required username="u" password="p";`,
			func(s *kafkaconn.Security) *string { return &s.JAAS }),
		sec(kafkaconn.KeyOAuthToken, "", "OAUTHBEARER token (a secret)",
			func(s *kafkaconn.Security) *string { return &s.OAuthToken }),
		sec(kafkaconn.KeyOAuthTokenFile, "", "file holding the OAUTHBEARER token, read again at every connection (for tokens that rotate)",
			func(s *kafkaconn.Security) *string { return &s.OAuthTokenFile }),
		sec(kafkaconn.KeyCA, "", "PEM file of the CAs that sign the brokers' certificates (empty: the system's CAs)",
			func(s *kafkaconn.Security) *string { return &s.CA }),
		sec(kafkaconn.KeyCertificate, "", "PEM client certificate, for brokers that require one (ssl.client.auth)",
			func(s *kafkaconn.Security) *string { return &s.Certificate }),
		sec(kafkaconn.KeyKey, "", "PEM private key of the client certificate",
			func(s *kafkaconn.Security) *string { return &s.Key }),
		sec(kafkaconn.KeyEndpointAlgorithm, "https", "https: the broker's certificate must name the host dialed; empty: skip that check (the CA is still checked)",
			func(s *kafkaconn.Security) *string { return &s.EndpointAlgorithm }),
		sec(kafkaconn.KeyTruststore, "", "Java truststore of the CAs to trust, instead of kafka.ssl.ca.location",
			func(s *kafkaconn.Security) *string { return &s.Truststore }),
		sec(kafkaconn.KeyTruststorePassword, "", "password of the truststore",
			func(s *kafkaconn.Security) *string { return &s.TruststorePassword }),
		upper(kafkaconn.KeyTruststoreType, "PKCS12", "PKCS12 or PEM (JKS: convert it with keytool to PKCS12)",
			func(s *kafkaconn.Security) *string { return &s.TruststoreType }),
		sec(kafkaconn.KeyKeystore, "", "Java PKCS12 keystore of the client certificate and key, instead of the PEM files",
			func(s *kafkaconn.Security) *string { return &s.Keystore }),
		sec(kafkaconn.KeyKeystorePassword, "", "password of the keystore",
			func(s *kafkaconn.Security) *string { return &s.KeystorePassword }),
		upper(kafkaconn.KeyKeystoreType, "PKCS12", "PKCS12 (JKS: convert it with keytool to PKCS12)",
			func(s *kafkaconn.Security) *string { return &s.KeystoreType }),
	}
}

// transaction.timeout.ms's range: a second at least, so a slow commit round trip is no abort;
// at most the brokers' default transaction.max.timeout.ms, above which InitProducerID fails.
const (
	minTxnTimeoutMs = 1_000
	maxTxnTimeoutMs = 900_000
)

// maxRebalanceDelay bounds worker.rebalance.delay: a node away longer than the leader's dead
// node removal time is no longer a member to wait for.
const maxRebalanceDelay = coordinator.DefaultDeadNodeRemoval

// clusterSettings are the keys of a cluster node only (DESIGN.md 3, 6 and 9).
func clusterSettings() []setting {
	return []setting{
		{name: "node.id",
			doc:   "this node's id in the cluster; empty: the id kept in data.dir, or a new one saved there",
			apply: func(c *Config, v string) error { c.NodeID = v; return checkNodeID(v) }},
		{name: "data.dir", def: "mongorelay-data",
			doc: "directory of the node's Raft log and snapshots and its node id; keep it across restarts",
			apply: func(c *Config, v string) error {
				c.DataDir = v
				if v == "" {
					return errors.New("is empty: give a directory the node may write")
				}
				return nil
			}},
		{name: "cluster.id", def: "mongorelay",
			doc: "the cluster's name; it prefixes every task's Kafka transactional.id, so clusters sharing brokers must differ; " +
				"kept in data.dir and stamped in Raft: a node of another cluster.id is refused at start and at join",
			apply: func(c *Config, v string) error {
				c.ClusterID = v
				if v == "" {
					return errors.New("is empty: give the cluster a name")
				}
				return nil
			}},
		{name: "cluster.secret",
			doc: "secret every node of the cluster shares (at least 16 characters, e.g. openssl rand -hex 32): every call between " +
				"nodes (/internal/ routes, forwarded writes) must carry it, else 401 or 403; empty: those calls take anyone who reaches " +
				"the REST API (a secret: prefer the environment variable)",
			apply: func(c *Config, v string) error {
				c.ClusterSecret = v
				if v == "" {
					return nil
				}
				return httpauth.CheckToken(v)
			}},
		{name: "cluster.tls.cert",
			doc: "PEM certificate (chain) this node shows the other nodes: Raft then runs over mutual TLS, and with http.tls.* it " +
				"stands for cluster.secret on their REST APIs; it must name the host of raft.advertise (an IP needs an IP SAN), allow " +
				"serverAuth and clientAuth, and be signed by cluster.tls.ca; empty: Raft over plain TCP",
			apply: func(c *Config, v string) error { c.ClusterTLSCert = v; return nil }},
		{name: "cluster.tls.key", doc: "PEM private key of cluster.tls.cert",
			apply: func(c *Config, v string) error { c.ClusterTLSKey = v; return nil }},
		{name: "cluster.tls.ca",
			doc:   "PEM file of the CA that signs every node's cluster.tls.cert: Raft takes only peers whose certificate it signed",
			apply: func(c *Config, v string) error { c.ClusterTLSCA = v; return nil }},
		{name: "http.advertise",
			doc:   "host:port other nodes reach the REST API at; empty: derived from http.listen",
			apply: func(c *Config, v string) error { c.HTTPAdvertise = v; return checkAdvertise(v) }},
		{name: "http.tls.ca",
			doc:   "PEM file of the CAs that sign the other nodes' http.tls.cert, trusted when this node forwards writes and heartbeats to them; empty: the system's CAs",
			apply: func(c *Config, v string) error { c.HTTPTLSCA = v; return nil }},
		{name: "raft.listen", def: ":8300",
			doc:   "address Raft listens on",
			apply: func(c *Config, v string) error { c.RaftListen = v; return checkListen(v) }},
		{name: "raft.advertise",
			doc:   "ip:port other nodes reach Raft at; empty: derived from raft.listen",
			apply: func(c *Config, v string) error { c.RaftAdvertise = v; return checkAdvertise(v) }},
		{name: "bootstrap", boolean: true, def: "false",
			doc: "create the cluster with the members of peers if data.dir holds no Raft state yet (harmless to keep on)",
			apply: func(c *Config, v string) (err error) {
				c.Bootstrap, err = parseBool(v)
				return err
			}},
		{name: "peers",
			doc: "the static members to bootstrap with, id=raft-host:port[=http-host:port],...",
			apply: func(c *Config, v string) (err error) {
				c.Peers, err = parsePeers(v)
				return err
			}},
		{name: "join",
			doc: "REST addresses (host:port,...) of members to ask to add this node; the first that answers forwards to the leader",
			apply: func(c *Config, v string) error {
				c.Join = splitList(v)
				for _, a := range c.Join {
					if err := checkAdvertise(a); err != nil {
						return err
					}
				}
				return nil
			}},
		{name: "raft.voters", def: "3",
			doc: "how many members vote in Raft (3 or 5); further nodes join as non-voters and still run tasks",
			apply: func(c *Config, v string) error {
				_, err := fmt.Sscan(v, &c.RaftVoters)
				if err != nil || c.RaftVoters < 1 {
					return fmt.Errorf("%q is not a voter count: give 3 or 5", v)
				}
				return nil
			}},
		{name: "raft.snapshot.threshold", def: "8192",
			doc: "how many Raft log entries since the last snapshot make the node take another, after which the log keeps only its newest 10240 entries",
			apply: func(c *Config, v string) error {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil || n < 1 {
					return fmt.Errorf("%q is not a number of log entries: give a whole number of at least 1", v)
				}
				c.RaftSnapshotThreshold = n
				return nil
			}},
		{name: "raft.snapshot.interval", def: "2m",
			doc: "how often the node checks raft.snapshot.threshold (at a random time between this and twice this)",
			apply: func(c *Config, v string) (err error) {
				c.RaftSnapshotInterval, err = parsePositiveDuration(v)
				return err
			}},
		{name: "worker.heartbeat.interval", def: coordinator.DefaultHeartbeatInterval.String(),
			doc: "how often the node tells the leader it is alive",
			apply: func(c *Config, v string) (err error) {
				c.HeartbeatInterval, err = parsePositiveDuration(v)
				return err
			}},
		{name: "worker.session.timeout", def: coordinator.DefaultSessionTimeout.String(),
			doc: "how long the leader waits without a heartbeat before it moves a node's tasks; a node whose connection " +
				"to the leader is refused or reset (a killed process) loses them at once",
			apply: func(c *Config, v string) (err error) {
				c.SessionTimeout, err = parsePositiveDuration(v)
				return err
			}},
		{name: "worker.lease", def: coordinator.DefaultLease.String(),
			doc: "how long a node keeps its tasks running without reaching the leader; below worker.session.timeout",
			apply: func(c *Config, v string) (err error) {
				c.Lease, err = parsePositiveDuration(v)
				return err
			}},
		{name: "worker.rebalance.delay", def: "0s",
			doc: "how long this node's tasks wait for it after it stops cleanly (SIGTERM) before they move to other nodes, " +
				"as Kafka Connect's scheduled.rebalance.max.delay.ms: set it where a stop is a restart (a rolling upgrade, " +
				"a StatefulSet pod) to a little more than a restart takes, so that a task does not move away and back; " +
				"0 moves them at once. The tasks of a killed node never wait",
			apply: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < 0 || d > maxRebalanceDelay {
					return fmt.Errorf("%q is not a duration from 0s to %s", v, maxRebalanceDelay)
				}
				c.RebalanceDelay = d
				return nil
			}},
	}
}

// ParseFlags reads a standalone process's configuration from args and the environment (getenv,
// usually os.Getenv). It returns the remaining positional arguments. Every bad value is
// reported at once, each naming its key and the fix.
func ParseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, []string, error) {
	c, rest, err := parseOnly(commonSettings(), fs, args, getenv)
	if err == nil {
		err = errors.Join(c.checkListeners()...)
	}
	return c, rest, err
}

// parseOnly reads the keys of all from flags, then the environment, then defaults, and
// returns the positional arguments.
func parseOnly(all []setting, fs *flag.FlagSet, args []string, getenv func(string) string) (Config, []string, error) {
	values, err := parseValues(fs, all, args, getenv, false, nil)
	if err != nil {
		return Config{}, nil, err
	}
	c, errs := applyValues(all, values)
	return c, fs.Args(), errors.Join(errs...)
}

// ParseWorkerFlags reads a cluster node's configuration (mongorelay worker): every key of
// ParseFlags and the cluster's, from flags, then MONGORELAY_* variables (getenv), then the YAML
// file named by --config or MONGORELAY_CONFIG (read with readFile, usually os.ReadFile; see
// readYAML), then defaults. Positional arguments are refused. Every bad value is reported at
// once.
func ParseWorkerFlags(fs *flag.FlagSet, args []string, getenv func(string) string, readFile func(string) ([]byte, error)) (Config, error) {
	all := settings()
	file := getenv(EnvName("config"))
	fs.StringVar(&file, "config", file, "YAML file with any of these keys, dotted or nested (env "+EnvName("config")+")")
	var fromFile map[string]string
	values, err := parseValues(fs, all, args, getenv, true, func() (map[string]string, error) {
		if file == "" {
			return nil, nil
		}
		data, err := readFile(file)
		if err != nil {
			return nil, fmt.Errorf("worker config file: %w", err)
		}
		fromFile, err = readYAML(data, all)
		if err != nil {
			return nil, fmt.Errorf("worker config file %s: %w", file, err)
		}
		return fromFile, nil
	})
	if err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q: the worker takes flags only (connectors are created through the REST API)", fs.Args())
	}
	c, errs := applyValues(all, values)
	if len(errs) == 0 {
		errs = append(c.checkCluster(), c.checkListeners()...)
	}
	return c, errors.Join(errs...)
}

// parseValues registers a flag per setting, parses args and returns each setting's value:
// the flag if given, else the environment variable if set, else the file's value (file may be
// nil), else the default (on a cluster node with http.auth.*, authDef where there is one).
func parseValues(fs *flag.FlagSet, all []setting, args []string, getenv func(string) string,
	cluster bool, file func() (map[string]string, error)) ([]string, error) {
	flags := make([]string, len(all))
	byFlag := map[string]int{}
	for i, s := range all {
		flags[i] = s.def
		v := &flagValue{s: &flags[i], boolean: s.boolean}
		fs.Var(v, FlagName(s.name), s.doc+" (env "+EnvName(s.name)+")")
		byFlag[FlagName(s.name)] = i
		if s.alias != "" {
			fs.Var(v, s.alias, "alias of --"+FlagName(s.name))
			byFlag[s.alias] = i
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	given := make([]bool, len(all))
	fs.Visit(func(f *flag.Flag) {
		if i, ok := byFlag[f.Name]; ok {
			given[i] = true
		}
	})
	var fromFile map[string]string
	if file != nil {
		var err error
		if fromFile, err = file(); err != nil {
			return nil, err
		}
	}
	values := make([]string, len(all))
	for i, s := range all {
		values[i] = flags[i] // the flag, or the default it was registered with
		if given[i] {
			continue
		}
		if env := getenv(EnvName(s.name)); env != "" {
			values[i], given[i] = env, true
		} else if v, ok := fromFile[s.name]; ok {
			values[i], given[i] = v, true
		}
	}
	if cluster && authConfigured(all, values) {
		for i, s := range all {
			if s.authDef != "" && !given[i] {
				values[i] = s.authDef
			}
		}
	}
	return values, nil
}

// authConfigured reports whether values set REST authentication: http.auth.token or
// http.auth.basic.file.
func authConfigured(all []setting, values []string) bool {
	for i, s := range all {
		if (s.name == "http.auth.token" || s.name == "http.auth.basic.file") && strings.TrimSpace(values[i]) != "" {
			return true
		}
	}
	return false
}

func applyValues(all []setting, values []string) (Config, []error) {
	var c Config
	var errs []error
	for i, s := range all {
		if err := s.apply(&c, strings.TrimSpace(values[i])); err != nil {
			errs = append(errs, fmt.Errorf("worker config %q: %w", s.name, err))
		}
	}
	for _, err := range c.KafkaSecurity.Check() {
		errs = append(errs, fmt.Errorf("worker config %w", err))
	}
	return c, errs
}

// KafkaOpts are the options every Kafka client of the process starts from: the brokers, TLS
// and SASL.
func (c Config) KafkaOpts() ([]kgo.Opt, error) {
	return kafkaconn.Opts(c.KafkaBrokers, c.KafkaSecurity)
}

// ParseKafkaFlags reads only the keys that reach Kafka (kafka.bootstrap.servers and the
// security keys), from flags, then MONGORELAY_* variables: for commands that are Kafka
// clients and nothing else (mongorelay consume). It returns the positional arguments.
func ParseKafkaFlags(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, []string, error) {
	return parseOnly(kafkaSettings(), fs, args, getenv)
}

// flagValue is a setting's flag: a string, or a switch for boolean settings.
type flagValue struct {
	s       *string
	boolean bool
}

func (f *flagValue) String() string {
	if f == nil || f.s == nil {
		return ""
	}
	return *f.s
}

func (f *flagValue) Set(v string) error { *f.s = v; return nil }

// IsBoolFlag lets a boolean setting be given without a value (--bootstrap).
func (f *flagValue) IsBoolFlag() bool { return f.boolean }

// knownSetting reports whether name is one of all's keys.
func knownSetting(all []setting, name string) bool {
	return slices.ContainsFunc(all, func(s setting) bool { return s.name == name })
}

// FlagName is the command-line flag that sets the key name.
func FlagName(name string) string { return strings.ReplaceAll(name, ".", "-") }

// EnvName is the environment variable that sets the key name.
func EnvName(name string) string {
	return "MONGORELAY_" + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(name))
}

// Logger builds the node's structured logger on w (stderr in the binary), at log.level until
// PUT /admin/loggers/root changes it.
func (c Config) Logger(w io.Writer) *slog.Logger {
	level := new(slog.LevelVar)
	level.Set(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(levelHandler{slog.NewJSONHandler(w, opts), level})
	}
	return slog.New(levelHandler{slog.NewTextHandler(w, opts), level})
}

// levelHandler is a log handler, and every handler derived from it, that gives the REST API
// its level to change (LevelVar; GET and PUT /admin/loggers).
type levelHandler struct {
	slog.Handler
	level *slog.LevelVar
}

// LevelVar is the level every logger derived from the node's logs at.
func (h levelHandler) LevelVar() *slog.LevelVar { return h.level }

func (h levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelHandler{h.Handler.WithAttrs(attrs), h.level}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{h.Handler.WithGroup(name), h.level}
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseCompression reads Kafka's compression.type names. Compression costs the task CPU and
// saves network and disk; on a fast local network none is quickest, which is why it is the
// default, as in Kafka's own producer.
func parseCompression(v string) (kgo.CompressionCodec, error) {
	switch v {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("%q is not one of none, gzip, snappy, lz4, zstd", v)
}
