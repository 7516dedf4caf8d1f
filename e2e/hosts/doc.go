// Package hosts holds the multi-host end-to-end test (DESIGN.md 18, docs/operations.md): three
// `mongorelay worker` processes, each in a Linux network namespace of its own with its own
// address on a bridge the test makes, Kafka and the MongoDB stand-in on this host's side of
// that bridge, and a steady write load. It cuts a follower off, then the leader, then only the
// link between two followers, restarts every node in turn, and checks that nothing written is
// lost, measuring how long each step takes. It needs root (network namespaces); elsewhere it
// skips, except under CI=true. It runs with the build tag e2e:
//
//	go test -tags e2e -count=1 -v ./e2e/hosts/
package hosts
