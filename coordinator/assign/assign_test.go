package assign

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
)

func tasksOf(groups map[string]int) []Task {
	var out []Task
	for g, k := range groups {
		for i := range k {
			out = append(out, Task{ID: fmt.Sprintf("%s/%d", g, i), Group: g})
		}
	}
	return out
}

func nodeNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("n%d", i)
	}
	return out
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// checkBalanced fails unless every task is on one of nodes and every node
// holds floor or ceil of its share.
func checkBalanced(t *testing.T, got map[string]string, tasks []Task, nodes []string) {
	t.Helper()
	if len(got) != len(tasks) {
		t.Fatalf("assigned %d tasks, want %d", len(got), len(tasks))
	}
	count := map[string]int{}
	ok := map[string]bool{}
	for _, n := range nodes {
		ok[n] = true
	}
	for _, task := range tasks {
		n, assigned := got[task.ID]
		if !assigned || !ok[n] {
			t.Fatalf("task %s on %q, not a live node", task.ID, n)
		}
		count[n]++
	}
	lo, hi := len(tasks)/len(nodes), ceilDiv(len(tasks), len(nodes))
	for _, n := range nodes {
		if count[n] < lo || count[n] > hi {
			t.Fatalf("node %s holds %d tasks, want %d..%d (counts %v)", n, count[n], lo, hi, count)
		}
	}
}

// checkSpread fails if a node holds more than ceil(k/N) of a group's k tasks.
func checkSpread(t *testing.T, got map[string]string, tasks []Task, nodes []string) {
	t.Helper()
	size := map[string]int{}
	on := map[[2]string]int{}
	for _, task := range tasks {
		size[task.Group]++
		on[[2]string{got[task.ID], task.Group}]++
	}
	for k, c := range on {
		if limit := ceilDiv(size[k[1]], len(nodes)); c > limit {
			t.Fatalf("node %s holds %d of group %s's %d tasks, want at most %d", k[0], c, k[1], size[k[1]], limit)
		}
	}
}

func moved(prev, next map[string]string) int {
	n := 0
	for id, node := range next {
		if p, ok := prev[id]; ok && p != node {
			n++
		}
	}
	return n
}

func TestAssign(t *testing.T) {
	tests := []struct {
		name   string
		groups map[string]int
		nodes  []string
		prev   map[string]string
		want   map[string]string
	}{
		{name: "no nodes", groups: map[string]int{"a": 2}, want: map[string]string{}},
		{name: "no tasks", nodes: []string{"x"}, want: map[string]string{}},
		{
			name:   "fresh, spread across nodes",
			groups: map[string]int{"a": 2, "b": 2},
			nodes:  []string{"x", "y"},
			want:   map[string]string{"a/0": "x", "a/1": "y", "b/0": "x", "b/1": "y"},
		},
		{
			name:   "sticky when balanced",
			groups: map[string]int{"a": 2},
			nodes:  []string{"x", "y"},
			prev:   map[string]string{"a/0": "y", "a/1": "x"},
			want:   map[string]string{"a/0": "y", "a/1": "x"},
		},
		{
			name:   "dead node's tasks move, others stay",
			groups: map[string]int{"a": 3},
			nodes:  []string{"x", "y"},
			prev:   map[string]string{"a/0": "x", "a/1": "y", "a/2": "z"},
			want:   map[string]string{"a/0": "x", "a/1": "y", "a/2": "x"},
		},
		{
			name:   "new node takes from the fullest",
			groups: map[string]int{"a": 4},
			nodes:  []string{"x", "y"},
			prev:   map[string]string{"a/0": "x", "a/1": "x", "a/2": "x", "a/3": "y"},
			want:   map[string]string{"a/0": "x", "a/1": "x", "a/2": "y", "a/3": "y"},
		},
		{
			name:   "unknown previous entries ignored",
			groups: map[string]int{"a": 1},
			nodes:  []string{"x"},
			prev:   map[string]string{"gone": "x", "a/0": "nowhere"},
			want:   map[string]string{"a/0": "x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Assign(tasksOf(tt.groups), tt.nodes, tt.prev)
			if !maps.Equal(got, tt.want) {
				t.Fatalf("Assign = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAssignProperties checks the package's guarantees on random clusters:
// a fresh assignment, then a node added, then a node removed, then tasks
// added and removed, each starting from the previous result.
func TestAssignProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		groups := map[string]int{}
		for g := range 1 + rng.IntN(5) {
			groups[fmt.Sprintf("c%d", g)] = 1 + rng.IntN(12)
		}
		tasks := tasksOf(groups)
		rng.Shuffle(len(tasks), func(i, j int) { tasks[i], tasks[j] = tasks[j], tasks[i] })
		nodes := nodeNames(1 + rng.IntN(6))
		name := fmt.Sprintf("iter %d: %d tasks %v on %d nodes", iter, len(tasks), groups, len(nodes))

		fresh := Assign(tasks, nodes, nil)
		t.Run(name+"/fresh", func(t *testing.T) {
			checkBalanced(t, fresh, tasks, nodes)
			checkSpread(t, fresh, tasks, nodes)
			if again := Assign(tasks, nodes, fresh); !maps.Equal(again, fresh) {
				t.Fatalf("reassigning a stable cluster moved tasks: %v -> %v", fresh, again)
			}
		})

		grown := append(nodeNames(len(nodes)), "new")
		added := Assign(tasks, grown, fresh)
		t.Run(name+"/add node", func(t *testing.T) {
			checkBalanced(t, added, tasks, grown)
			if m, limit := moved(fresh, added), ceilDiv(len(tasks), len(grown)); m > limit {
				t.Fatalf("adding a node moved %d tasks, want at most %d", m, limit)
			}
		})

		if len(grown) > 1 {
			gone := grown[rng.IntN(len(grown))]
			var left []string
			for _, n := range grown {
				if n != gone {
					left = append(left, n)
				}
			}
			removed := Assign(tasks, left, added)
			t.Run(name+"/remove node", func(t *testing.T) {
				checkBalanced(t, removed, tasks, left)
				for id, n := range added {
					if n != gone && removed[id] != n {
						t.Fatalf("removing %s moved task %s from %s to %s", gone, id, n, removed[id])
					}
				}
			})
		}

		// Tasks come and go (a collection created, another dropped).
		changed := tasksOf(map[string]int{"c0": 1 + rng.IntN(12), "extra": rng.IntN(4)})
		for _, task := range tasks {
			if task.Group != "c0" {
				changed = append(changed, task)
			}
		}
		next := Assign(changed, grown, added)
		t.Run(name+"/tasks change", func(t *testing.T) {
			checkBalanced(t, next, changed, grown)
		})
	}
}

func TestAssignDeterministic(t *testing.T) {
	tasks := tasksOf(map[string]int{"a": 7, "b": 5, "c": 3})
	nodes := []string{"z", "y", "x", "w"}
	want := Assign(tasks, nodes, nil)
	for range 50 {
		shuffled := append([]Task(nil), tasks...)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		rev := []string{"w", "x", "y", "z"}
		if got := Assign(shuffled, rev, nil); !maps.Equal(got, want) {
			t.Fatalf("input order changed the result: %v vs %v", got, want)
		}
	}
}
