// Package assign decides which node runs which task: balanced, sticky, and
// spreading each connector's tasks across nodes.
//
// Assign is a pure function of the previous assignment, the tasks and the
// live nodes, so the leader can recompute it at will and every result can be
// checked in a unit test. Its guarantees, when the previous assignment was
// itself produced by Assign:
//
//   - balance: every node holds floor(T/N) or ceil(T/N) of the T tasks;
//   - stickiness: a task whose node is still live stays there unless that
//     node holds more than its share, so adding a node moves at most
//     ceil(T/N') tasks (the ones the new node takes) and removing a node
//     moves only the tasks it held;
//   - spread: among the choices that keep the above, a task goes to the node
//     with the fewest tasks of its connector (Group), and a node that must
//     give tasks up gives up those of its most concentrated connector first.
//     A fresh assignment puts at most ceil(k/N) of a connector's k tasks on
//     one node.
package assign

import (
	"cmp"
	"slices"
)

// Task is one unit to place.
type Task struct {
	// ID names the task uniquely among all tasks given to Assign.
	ID string
	// Group is what its tasks should be spread by: the connector.
	Group string
}

// Assign returns the node of every task, keyed by Task.ID. prev is the
// current assignment (task ID → node); entries for unknown tasks or nodes
// are ignored. With no nodes it returns an empty map. The result depends only
// on the arguments, never on map iteration order.
func Assign(tasks []Task, nodes []string, prev map[string]string) map[string]string {
	out := make(map[string]string, len(tasks))
	if len(nodes) == 0 || len(tasks) == 0 {
		return out
	}
	nodes = slices.Clone(nodes)
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	tasks = slices.Clone(tasks)
	slices.SortFunc(tasks, func(a, b Task) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.ID, b.ID))
	})

	n := len(nodes)
	base, extra := len(tasks)/n, len(tasks)%n
	groupSize := map[string]int{}
	for _, t := range tasks {
		groupSize[t.Group]++
	}

	idx := make(map[string]int, n)
	for i, id := range nodes {
		idx[id] = i
	}
	held := make([][]Task, n) // tasks kept on each node, in sorted task order
	var free []Task
	for _, t := range tasks {
		if i, ok := idx[prev[t.ID]]; ok {
			held[i] = append(held[i], t)
		} else {
			free = append(free, t)
		}
	}

	// The extra+1 slots go first to the nodes already holding the most, so
	// that as few tasks as possible move; the rest stay open for the fill.
	target := make([]int, n)
	order := make([]int, n)
	for i := range order {
		order[i] = i
		target[i] = base
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(held[b]) - len(held[a]) })
	plusLeft := extra
	for _, i := range order {
		if plusLeft == 0 || len(held[i]) <= base {
			break
		}
		target[i] = base + 1
		plusLeft--
	}

	for i := range held {
		for len(held[i]) > target[i] {
			j := shedIndex(held[i], groupSize, n)
			free = append(free, held[i][j])
			held[i] = slices.Delete(held[i], j, j+1)
		}
	}

	count := make([]int, n)
	inGroup := make([]map[string]int, n)
	for i := range held {
		count[i] = len(held[i])
		inGroup[i] = map[string]int{}
		for _, t := range held[i] {
			inGroup[i][t.Group]++
			out[t.ID] = nodes[i]
		}
	}

	slices.SortFunc(free, func(a, b Task) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.ID, b.ID))
	})
	for _, t := range free {
		best := -1
		for i := range nodes {
			if !(count[i] < target[i] || (target[i] == base && plusLeft > 0)) {
				continue
			}
			if best < 0 || better(inGroup[i][t.Group], count[i], inGroup[best][t.Group], count[best]) {
				best = i
			}
		}
		if count[best] == target[best] {
			target[best]++
			plusLeft--
		}
		count[best]++
		inGroup[best][t.Group]++
		out[t.ID] = nodes[best]
	}
	return out
}

// better reports whether a node with g tasks of the group and c in all is a
// better home than one with bg and bc: fewer of the group, then fewer in
// all; ties keep the earlier (lower named) node.
func better(g, c, bg, bc int) bool {
	if g != bg {
		return g < bg
	}
	return c < bc
}

// shedIndex picks the task a node over its share gives up: one of the group
// most above its fair share on this node, the last of it in task order.
func shedIndex(held []Task, groupSize map[string]int, nodes int) int {
	on := map[string]int{}
	for _, t := range held {
		on[t.Group]++
	}
	seen := map[string]bool{}
	best, bestExcess := -1, 0
	for j := len(held) - 1; j >= 0; j-- {
		g := held[j].Group
		if seen[g] {
			continue
		}
		seen[g] = true
		excess := on[g] - (groupSize[g]+nodes-1)/nodes
		if best < 0 || excess > bestExcess {
			best, bestExcess = j, excess
		}
	}
	return best
}
