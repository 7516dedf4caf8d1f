// Package worker runs a mongorelay node: its configuration, its wiring of Kafka, MongoDB and
// the schema registry, and the tasks it owns.
package worker

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Config is a node's configuration (DESIGN.md 9). Build it with ParseFlags, which applies, in
// order of precedence, command-line flags, MONGORELAY_* environment variables and defaults.
type Config struct {
	KafkaBrokers   []string
	OffsetsTopic   string
	SchemasTopic   string
	RegistryListen string
	// ReplicationFactor is used for the topics the node creates for itself (offsets, schemas);
	// -1 leaves it to the broker's default.replication.factor.
	ReplicationFactor int
	LogLevel          slog.Level
	LogFormat         string
	ShutdownTimeout   time.Duration
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
}

// settings lists every key a node understands, with its default and why one would change it.
func settings() []setting {
	return []setting{
		{name: "kafka.bootstrap.servers", alias: "kafka", doc: "comma-separated Kafka brokers (required)",
			apply: func(c *Config, v string) error {
				c.KafkaBrokers = splitList(v)
				if len(c.KafkaBrokers) == 0 {
					return errors.New("is required: give --kafka host:port[,host:port]")
				}
				return nil
			}},
		{name: "offsets.topic", def: "mongorelay-offsets", doc: "compacted topic holding each task's resume position",
			apply: func(c *Config, v string) error { c.OffsetsTopic = v; return requireTopic(v) }},
		{name: "schemas.topic", def: "mongorelay-schemas", doc: "compacted topic holding the built-in schema registry (standalone)",
			apply: func(c *Config, v string) error { c.SchemasTopic = v; return requireTopic(v) }},
		{name: "registry.listen", def: "127.0.0.1:8081", doc: "address of the built-in Confluent-compatible schema registry",
			apply: func(c *Config, v string) error { c.RegistryListen = v; return nil }},
		{name: "topic.replication.factor", def: "-1", doc: "replication factor of the offsets and schemas topics (-1: broker default)",
			apply: func(c *Config, v string) error {
				_, err := fmt.Sscan(v, &c.ReplicationFactor)
				if err != nil || c.ReplicationFactor == 0 || c.ReplicationFactor < -1 {
					return fmt.Errorf("%q is not a replication factor: give -1 or a positive number", v)
				}
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
	}
}

// ParseFlags reads the node configuration from args and the environment (getenv, usually
// os.Getenv). It returns the remaining positional arguments. Every bad value is reported at
// once, each naming its key and the fix.
func ParseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, []string, error) {
	all := settings()
	values := make([]string, len(all))
	for i, s := range all {
		values[i] = s.def
		if env := getenv(EnvName(s.name)); env != "" {
			values[i] = env
		}
		fs.StringVar(&values[i], FlagName(s.name), values[i], s.doc+" (env "+EnvName(s.name)+")")
		if s.alias != "" {
			fs.StringVar(&values[i], s.alias, values[i], "alias of --"+FlagName(s.name))
		}
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, nil, err
	}
	var c Config
	var errs []error
	for i, s := range all {
		if err := s.apply(&c, strings.TrimSpace(values[i])); err != nil {
			errs = append(errs, fmt.Errorf("worker config %q: %w", s.name, err))
		}
	}
	return c, fs.Args(), errors.Join(errs...)
}

// FlagName is the command-line flag that sets the key name.
func FlagName(name string) string { return strings.ReplaceAll(name, ".", "-") }

// EnvName is the environment variable that sets the key name.
func EnvName(name string) string {
	return "MONGORELAY_" + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(name))
}

// Logger builds the node's structured logger on w (stderr in the binary).
func (c Config) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
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

func requireTopic(v string) error {
	if v == "" {
		return errors.New("is empty: give a Kafka topic name")
	}
	return nil
}
