package check

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// Compose loads a compose file with the compose-spec loader, which validates it against the
// Compose Specification's schema (an unknown or misspelled field, a value of the wrong type
// are errors), with env standing for the .env file. It then checks the deployment: MongoDB 7
// members and a one-shot service initiating them, Kafka in KRaft mode, and at least 3
// mongorelay workers with HTTPS, an admin token, Raft over mutual TLS, persistent Raft state
// and a stop grace period above shutdown.timeout.
func Compose(ctx context.Context, path string, content []byte, env map[string]string) error {
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: content}},
		Environment: env,
	}
	project, err := loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName("mongorelay", true)
	})
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	var problems []error
	var mongos, workers int
	var initiated, kraft bool
	for name, svc := range project.Services {
		image, _, _ := strings.Cut(svc.Image, ":")
		environment := func(key string) string {
			if v := svc.Environment[key]; v != nil {
				return *v
			}
			return ""
		}
		switch {
		case image == "mongo" && strings.Contains(strings.Join(svc.Command, " "), "rs.initiate"):
			initiated = true
		case image == "mongo":
			mongos++
			if !strings.HasPrefix(svc.Image, "mongo:7") {
				problems = append(problems, fmt.Errorf("service %s: image %s, want MongoDB 7", name, svc.Image))
			}
		case image == "apache/kafka":
			kraft = strings.Contains(environment("KAFKA_PROCESS_ROLES"), "controller")
		case image == "mongorelay":
			workers++
			for _, key := range []string{"MONGORELAY_HTTP_TLS_CERT", "MONGORELAY_HTTP_AUTH_TOKEN", "MONGORELAY_CLUSTER_TLS_CERT", "MONGORELAY_NODE_ID"} {
				if environment(key) == "" {
					problems = append(problems, fmt.Errorf("service %s: %s is not set", name, key))
				}
			}
			if svc.StopGracePeriod == nil || *svc.StopGracePeriod <= types.Duration(shutdownTimeout) {
				problems = append(problems, fmt.Errorf("service %s: stop_grace_period must be above shutdown.timeout (%s)", name, shutdownTimeout))
			}
			if !mountsVolumeAt(svc, "/var/lib/mongorelay") {
				problems = append(problems, fmt.Errorf("service %s: no volume keeps its Raft state (/var/lib/mongorelay)", name))
			}
		}
	}
	if mongos < 3 || !initiated {
		problems = append(problems, fmt.Errorf("want a 3-member replica set and a service initiating it: %d members, initiated: %v", mongos, initiated))
	}
	if !kraft {
		problems = append(problems, errors.New("no Kafka service in KRaft mode (KAFKA_PROCESS_ROLES with controller)"))
	}
	if workers < 3 {
		problems = append(problems, fmt.Errorf("%d mongorelay workers, want 3", workers))
	}
	return errors.Join(problems...)
}

func mountsVolumeAt(svc types.ServiceConfig, target string) bool {
	for _, v := range svc.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == target {
			return true
		}
	}
	return false
}
