package check

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Dockerfile parses a Dockerfile as BuildKit does, failing on any parse error, parser warning
// or lint rule BuildKit reports, and checks that the image it builds runs as a non-root user
// on a distroless or scratch base with an exec-form HEALTHCHECK running `mongorelay healthcheck`.
func Dockerfile(content []byte) error {
	res, err := parser.Parse(bytes.NewReader(content))
	if err != nil {
		return fmt.Errorf("parse the Dockerfile: %w", err)
	}
	var problems []error
	for _, w := range res.Warnings {
		problems = append(problems, fmt.Errorf("line %d: %s", w.Location.Start.Line, w.Short))
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		problems = append(problems, fmt.Errorf("line %d: %s: %s", line, rule, msg))
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return errors.Join(append(problems, fmt.Errorf("parse the Dockerfile's instructions: %w", err))...)
	}
	if len(stages) == 0 {
		return errors.Join(append(problems, errors.New("the Dockerfile has no FROM"))...)
	}
	final := stages[len(stages)-1]
	if final.BaseName != "scratch" && !strings.HasPrefix(final.BaseName, "gcr.io/distroless/") {
		problems = append(problems, fmt.Errorf("the image's base %q is neither distroless nor scratch", final.BaseName))
	}
	var user string
	var health *instructions.HealthCheckCommand
	var entrypoint *instructions.EntrypointCommand
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			health = c
		case *instructions.EntrypointCommand:
			entrypoint = c
		}
	}
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "root" || name == "0" {
		problems = append(problems, fmt.Errorf("the image runs as %q: want a non-root USER", user))
	}
	switch {
	case health == nil:
		problems = append(problems, errors.New("the image has no HEALTHCHECK"))
	case len(health.Health.Test) < 3 || health.Health.Test[0] != "CMD":
		problems = append(problems, fmt.Errorf("HEALTHCHECK %q is not in exec form: a distroless image has no shell", health.Health.Test))
	case !strings.HasSuffix(health.Health.Test[1], "/mongorelay") || !slices.Contains(health.Health.Test[2:], "healthcheck"):
		problems = append(problems, fmt.Errorf("HEALTHCHECK %q does not run mongorelay healthcheck", health.Health.Test))
	}
	if entrypoint == nil || entrypoint.PrependShell {
		problems = append(problems, errors.New("the image needs an exec-form ENTRYPOINT: a distroless image has no shell"))
	}
	return errors.Join(problems...)
}
