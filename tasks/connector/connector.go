// Package connector is the seam between the runtime and the connector kinds (DESIGN.md 12): a
// kind declares its config keys, validates a config, expands it into task specs (the leader
// calls it) and runs one task spec (the runner calls it). The runner, the coordinator and the
// REST API reach a kind only through a Catalog, so a new kind plugs in without touching them.
package connector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/tasks/taskid"
	"github.com/mongorelay/mongorelay/tasks/taskmetrics"
)

// Type is what Kafka Connect calls a connector's direction.
type Type string

// The connector types.
const (
	Source Type = "source"
	Sink   Type = "sink"
)

// ClassKey is the config key that names a connector's kind, as in Kafka Connect.
const ClassKey = "connector.class"

// Plugin describes a kind as GET /connector-plugins lists it.
type Plugin struct {
	// Class is the connector.class value that selects the kind.
	Class string
	// Aliases are other connector.class values accepted for it (the class names of the
	// connectors it replaces).
	Aliases []string
	Type    Type
	Version string
}

// Task is one task as the runner hands it to its kind.
type Task struct {
	Connector string
	// Config is the connector's config as stored: validated, with literal secrets and with
	// config provider references unresolved (the kind resolves them when it parses the
	// config, on the node that runs the task). It is shared: do not modify it.
	Config map[string]string
	Spec   taskid.Spec
	// WriterID names this run's owner (node and assignment epoch) in what the task writes,
	// so that a consumer can check that a task's writers only ever move on; "" names none.
	WriterID string
	// Degraded, when not nil, is how the run says it is alive but stalled: a wait on Kafka,
	// MongoDB or the registry that has lasted more than a few seconds, the reason naming the
	// wait and the last error seen. "" says it is healthy again. The task stays RUNNING; its
	// status shows the reason. Safe for concurrent use.
	Degraded func(reason string)
	// Metrics counts what the task does, for the node's /metrics: a Unit per collection shard
	// it streams. nil counts for no one.
	Metrics *taskmetrics.Task
	// KafkaClient, when not nil, returns the options that name a Kafka client the task
	// creates clientID and count its traffic for the node's /metrics.
	KafkaClient func(clientID string) []kgo.Opt
	// SnapshotRequests, when not nil, returns the connector's ad-hoc snapshot requests as the
	// node last applied them, oldest first. A source task polls it while it streams.
	SnapshotRequests func() []SnapshotRequest
	// SnapshotSignal, when not nil, records an execute-snapshot signal the task read from its
	// connector's signal collection as a snapshot request of collections, once per signal
	// (its document's _id as extended JSON). An error is one to retry: the task fails, and
	// reads the signal again when it restarts.
	SnapshotSignal func(ctx context.Context, collections []string, signal string) error
}

// SnapshotRequest asks for collections of a running connector to be copied again while they
// stream (POST /connectors/{name}/snapshot): an incremental snapshot.
type SnapshotRequest struct {
	// ID orders a connector's requests: a later request has a greater id.
	ID uint64
	// Collections are the collections to copy, as "<db>.<collection>".
	Collections []string
}

// ReportDegraded reports reason through t.Degraded, if set ("" clears it).
func (t Task) ReportDegraded(reason string) {
	if t.Degraded != nil {
		t.Degraded(reason)
	}
}

// Kind is a connector kind compiled into the binary.
//
// Config values may hold Kafka Connect's config provider references (${env:NAME},
// ${file:/path:key}, ${directory:/path:file}; internal/configprovider), which are stored and
// shown as written: Validate, Check, Expand and Run resolve them on the node they run on and
// never return, log or store what they resolve to.
type Kind interface {
	Plugin() Plugin
	// ConfigDef lists every config key the kind reads, in the order validation reports them.
	ConfigDef() []ConfigKey
	// Validate checks the config of the connector name, references resolved, and returns it
	// normalised, as it is stored (references unresolved); a bad config gives a
	// *ValidationError naming every bad key and its fix.
	Validate(name string, config map[string]string) (map[string]string, error)
	// Redact returns a stored config as responses and logs may show it: every secret
	// replaced by [hidden], references shown as written. It resolves nothing.
	Redact(name string, config map[string]string) map[string]string
	// Check reaches the services the connector needs (a database, a registry) without
	// writing anything, and says which key to fix when one cannot be reached.
	Check(ctx context.Context, name string, config map[string]string) error
	// Expand lists the connector's tasks, in a stable order; it returns when ctx ends.
	Expand(ctx context.Context, name string, config map[string]string) ([]taskid.Spec, error)
	// Run runs one task until ctx ends (then it stops cleanly and returns nil) or the task
	// fails. An error marked Permanent is one a restart cannot fix.
	Run(ctx context.Context, t Task) error
}

// TopicNamer is a Kind that can say, without running, which topics its tasks write: GET
// /connectors/{name}/topics. A kind whose topics are only known while it runs does not
// implement it.
type TopicNamer interface {
	// Topics returns the topics a task of the connector name with spec writes its records to
	// (not its dead letter topic), resolving what config references on this node.
	Topics(name string, config map[string]string, spec taskid.Spec) ([]string, error)
}

// ErrNoTopics is Catalog.Topics' error for a kind that does not name its topics.
var ErrNoTopics = errors.New("the connector's kind does not say which topics its tasks write")

// Catalog is the kinds a binary has, found by connector.class.
type Catalog struct {
	kinds []Kind
}

// NewCatalog returns a catalog of kinds; no two may share a class name.
func NewCatalog(kinds ...Kind) (*Catalog, error) {
	seen := map[string]bool{}
	for _, k := range kinds {
		p := k.Plugin()
		for _, class := range append([]string{p.Class}, p.Aliases...) {
			if seen[class] {
				return nil, fmt.Errorf("connector class %q is claimed by two kinds", class)
			}
			seen[class] = true
		}
	}
	return &Catalog{kinds: slices.Clone(kinds)}, nil
}

// Plugins lists the kinds, in the order they were given.
func (c *Catalog) Plugins() []Plugin {
	out := make([]Plugin, len(c.kinds))
	for i, k := range c.kinds {
		out[i] = k.Plugin()
	}
	return out
}

// Description is a kind and its config keys, as GET /connector-plugins and the reference
// pages show them.
type Description struct {
	Plugin Plugin
	Keys   []ConfigKey
}

// Describe describes every kind, in the order they were given.
func (c *Catalog) Describe() []Description {
	out := make([]Description, len(c.kinds))
	for i, k := range c.kinds {
		out[i] = Description{Plugin: k.Plugin(), Keys: k.ConfigDef()}
	}
	return out
}

// Kind returns the kind config's connector.class names, or a *ValidationError saying which
// classes there are.
func (c *Catalog) Kind(config map[string]string) (Kind, error) {
	class := strings.TrimSpace(config[ClassKey])
	for _, k := range c.kinds {
		p := k.Plugin()
		if class == p.Class || slices.Contains(p.Aliases, class) {
			return k, nil
		}
	}
	var classes []string
	for _, p := range c.Plugins() {
		classes = append(classes, p.Class)
	}
	msg := fmt.Sprintf("is required: set it to one of %s", strings.Join(classes, ", "))
	if class != "" {
		msg = fmt.Sprintf("%q is not a connector class this build has: use one of %s", class, strings.Join(classes, ", "))
	}
	return nil, &ValidationError{Problems: []Problem{{Key: ClassKey, Value: class, Message: msg}}}
}

// Validate checks config with its kind (Kind.Validate).
func (c *Catalog) Validate(name string, config map[string]string) (map[string]string, error) {
	k, err := c.Kind(config)
	if err != nil {
		return nil, err
	}
	return k.Validate(name, config)
}

// Redact returns config as it may be shown (Kind.Redact); a config of no known kind is shown
// with every value hidden but its class.
func (c *Catalog) Redact(name string, config map[string]string) map[string]string {
	if k, err := c.Kind(config); err == nil {
		return k.Redact(name, config)
	}
	out := make(map[string]string, len(config))
	for key, v := range config {
		out[key] = Hidden
		if key == ClassKey {
			out[key] = v
		}
	}
	return out
}

// RestoreHidden returns the config sent to replace the stored one (nil: none) with every value
// that is the stored value as responses show it, [hidden] included, replaced by the stored
// value: a config read with GET and sent back keeps its secrets instead of storing the
// placeholder (DESIGN.md 7). A [hidden] that matches nothing stays: the kind's Validate
// refuses it in a secret.
func (c *Catalog) RestoreHidden(name string, sent, stored map[string]string) map[string]string {
	if stored == nil {
		return sent
	}
	shown := c.Redact(name, stored)
	out := make(map[string]string, len(sent))
	for key, v := range sent {
		if old, ok := stored[key]; ok && strings.Contains(v, Hidden) && v == shown[key] {
			v = old
		}
		out[key] = v
	}
	return out
}

// Type is the type of config's kind, "" when it has none.
func (c *Catalog) Type(config map[string]string) Type {
	if k, err := c.Kind(config); err == nil {
		return k.Plugin().Type
	}
	return ""
}

// Check reaches what config needs (Kind.Check).
func (c *Catalog) Check(ctx context.Context, name string, config map[string]string) error {
	k, err := c.Kind(config)
	if err != nil {
		return err
	}
	return k.Check(ctx, name, config)
}

// Expand lists the tasks of a connector (Kind.Expand).
func (c *Catalog) Expand(ctx context.Context, name string, config map[string]string) ([]taskid.Spec, error) {
	k, err := c.Kind(config)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", name, err)
	}
	return k.Expand(ctx, name, config)
}

// Topics returns the topics the tasks with specs of a connector write, sorted, without
// repeats (TopicNamer), or ErrNoTopics.
func (c *Catalog) Topics(name string, config map[string]string, specs []taskid.Spec) ([]string, error) {
	k, err := c.Kind(config)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", name, err)
	}
	namer, ok := k.(TopicNamer)
	if !ok {
		return nil, fmt.Errorf("connector %s: %w", name, ErrNoTopics)
	}
	var out []string
	for _, spec := range specs {
		topics, err := namer.Topics(name, config, spec)
		if err != nil {
			return nil, fmt.Errorf("connector %s: topics of task %s: %w", name, spec.Name(), err)
		}
		out = append(out, topics...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Run runs one task with its kind (Kind.Run).
func (c *Catalog) Run(ctx context.Context, t Task) error {
	k, err := c.Kind(t.Config)
	if err != nil {
		return Permanent(fmt.Errorf("connector %s: %w", t.Connector, err))
	}
	return k.Run(ctx, t)
}
