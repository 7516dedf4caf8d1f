// Package check validates the deployment files of deploy/ and the Dockerfile offline, each with
// the parser the real tool uses: BuildKit's Dockerfile parser, the compose-spec loader (schema
// validation on), strict decoding into the Kubernetes and Prometheus Operator API types, and
// systemd-analyze verify. Beyond what each parser refuses, it checks the properties the
// deployment promises (a non-root user, probes, a grace period above shutdown.timeout, ...).
//
// It is a Go module of its own so that the product's module does not take these dependencies.
// Its tests run every check on the shipped files and on broken copies of them, and run the
// compose file's workers as real processes on the test environment's Kafka (make test).
package check
