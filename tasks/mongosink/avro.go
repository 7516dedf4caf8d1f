package mongosink

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/client"
	"github.com/mongorelay/mongorelay/tasks/avroschema"
)

// registryAvro reads Confluent wire-format Avro through a schema registry into BSON values,
// restoring the BSON kinds mongorelay's typed documents hint at (avroschema.ToBSON). Parsed
// schemas are kept per id.
type registryAvro struct {
	src registry.SchemaSource

	mu      sync.Mutex
	schemas map[int]avro.Schema
}

func newRegistryAvro(src registry.SchemaSource) *registryAvro {
	return &registryAvro{src: src, schemas: map[int]avro.Schema{}}
}

func (a *registryAvro) decode(ctx context.Context, b []byte) (any, error) {
	id, body, err := registry.SplitWire(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotRead, err)
	}
	sch, err := a.schema(ctx, id)
	if err != nil {
		return nil, err
	}
	var v any
	if err := avro.Unmarshal(sch, body, &v); err != nil {
		return nil, fmt.Errorf("%w: Avro with schema %d: %v", errNotRead, id, err)
	}
	out, err := avroschema.ToBSON(sch, v)
	if err != nil {
		return nil, fmt.Errorf("%w: Avro with schema %d: %v", errNotRead, id, err)
	}
	return out, nil
}

// schema returns schema id, parsed. A registry that cannot be reached is an error a retry
// can fix; a schema it does not have is not.
func (a *registryAvro) schema(ctx context.Context, id int) (avro.Schema, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.schemas[id]; ok {
		return s, nil
	}
	text, err := a.src.SchemaByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("look up Avro schema %d in the schema registry: %w", id, err)
	}
	// A cache per schema: names defined by one subject's schema must not leak into another's.
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("%w: schema %d does not parse: %v", errNotRead, id, err)
	}
	a.schemas[id] = s
	return s, nil
}

// avroFor returns how a connector's tasks read Avro: through the built-in registry, unless
// the connector names another (schema.registry.url).
func (k *Kind) avroFor(cfg *Config) (avroDecoder, error) {
	if cfg.SchemaRegistryURL == "" {
		if k.env.Registry == nil {
			return nil, nil
		}
		return newRegistryAvro(k.env.Registry), nil
	}
	cl, err := client.New(strings.TrimSpace(cfg.SchemaRegistryURL))
	if err != nil {
		return nil, fmt.Errorf("connector %s: config %q: %w", cfg.Name, "schema.registry.url", err)
	}
	return newRegistryAvro(client.NewCached(cl)), nil
}
