// Package chaos is the chaos harness of DESIGN.md 13: a 3-node cluster on private servers,
// killed (-9) and paused (SIGSTOP) on a seeded schedule (TestChaos), or cut off from Kafka,
// MongoDB and its schema registry one after another (TestOutages), while a seeded writer
// changes documents, and a verifier that checks, per document, that the records on Kafka are
// the changes applied, in order, each once. It runs with the build tag chaos (README.md):
//
//	make chaos SEED=1
//	make chaos-outages SEED=1
package chaos
