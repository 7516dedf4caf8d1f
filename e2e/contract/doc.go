// Package contract holds the end-to-end tests of the REST API's contract with Kafka Connect's
// tools: the request/response pairs of Kafka Connect 4.x's REST resources replayed against
// real mongorelay processes, and the bad inputs every one of which must be refused without a
// change to the cluster's state. They run with the build tag e2e:
//
//	go test -tags e2e -count=1 ./e2e/contract/
//
// By default both go through a follower of a 3-node cluster; the flag
// -contract.via=follower,leader,standalone (make contract) sends them through each.
package contract
