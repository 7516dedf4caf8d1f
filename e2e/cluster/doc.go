// Package cluster holds the end-to-end tests of a mongorelay cluster: real `mongorelay worker`
// processes, real Kafka and the MongoDB stand-in, killed, paused and restarted while changes
// stream. They run with the build tag e2e:
//
//	go test -tags e2e -count=1 ./e2e/cluster/
package cluster
