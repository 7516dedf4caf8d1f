package assign

import "github.com/mongorelay/mongorelay/tasks/taskid"

// Share groups collection shards into at most limit tasks (0: no cap), Kafka Connect's
// tasks.max, the way Connect's ConnectorUtils.groupPartitions does: contiguous runs in the
// given order, the first len(units) mod limit of them one longer. Neighbours in that order are
// mostly shards of one collection, so a collection's shards tend to share a task. A group of
// one is the plain task it would be without the cap.
func Share(units []taskid.Spec, limit int) []taskid.Spec {
	if limit <= 0 || len(units) <= limit {
		return units
	}
	out := make([]taskid.Spec, 0, limit)
	per, longer := len(units)/limit, len(units)%limit
	for i, start := 0, 0; i < limit; i++ {
		n := per
		if i < longer {
			n++
		}
		if n == 1 {
			out = append(out, units[start])
		} else {
			out = append(out, taskid.Spec{Members: units[start : start+n : start+n]})
		}
		start += n
	}
	return out
}
