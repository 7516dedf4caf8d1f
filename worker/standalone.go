package worker

import (
	"errors"
	"fmt"
	"os"

	"github.com/mongorelay/mongorelay/tasks/connector"
)

// Connector is a connector of a standalone process's files: a name and a validated config.
type Connector struct {
	Name   string
	Config map[string]string
}

// LoadConnectorFiles reads and validates connector files ({"name":..., "config":{...}}), all of
// them before anything starts, so a bad file changes nothing.
func LoadConnectorFiles(paths []string) ([]Connector, error) {
	catalog := Kinds()
	var conns []Connector
	var errs []error
	names := map[string]string{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read connector file: %w", err))
			continue
		}
		name, raw, err := connector.ConnectorFromJSON(data)
		if err == nil {
			raw, err = catalog.Validate(name, raw)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("connector file %s: %w", p, err))
			continue
		}
		if other, dup := names[name]; dup {
			errs = append(errs, fmt.Errorf("connector file %s: connector %q is already defined in %s: give it another name", p, name, other))
			continue
		}
		names[name] = p
		conns = append(conns, Connector{Name: name, Config: raw})
	}
	if len(paths) == 0 {
		errs = append(errs, errors.New("name at least one connector file"))
	}
	return conns, errors.Join(errs...)
}
