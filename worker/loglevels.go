package worker

import (
	"context"
	"time"
)

// followLogLevels applies the levels set for the whole cluster (PUT
// /admin/loggers/{logger}?scope=cluster) to this node's loggers, each once as it changes in the
// cluster state: when the node starts or joins, the state's levels are applied too. A level
// set on this node alone afterwards holds until the cluster's changes again.
func (n *Node) followLogLevels(ctx context.Context) {
	applied := map[string]int64{} // by logger: the ModifiedMs applied
	for {
		st, changed := n.node.Watch()
		for _, l := range st.LogLevels() {
			if applied[l.Logger] == l.ModifiedMs {
				continue
			}
			applied[l.Logger] = l.ModifiedMs
			if err := n.loggers.Set(l.Logger, l.Level, time.UnixMilli(l.ModifiedMs)); err != nil {
				n.log.Warn("a log level set for the cluster does not apply to this node", "logger", l.Logger, "level", l.Level, "err", err)
				continue
			}
			n.log.Info("log level changed for the cluster", "logger", l.Logger, "level", l.Level)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}
