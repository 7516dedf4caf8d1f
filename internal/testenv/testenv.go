// Package testenv gives tests the addresses of the real servers started by
// `make env-up` (deploy/local), and fails or skips clearly when they are absent.
//
// Outside CI a test that needs a server skips when its variable is unset, so
// `go test ./...` works on a laptop without the environment. Under CI=true it
// fails instead: a suite that silently skipped its integration tests would
// prove nothing.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Environment variables written to .cache/env/env.sh by `make env-up`.
const (
	// KafkaVar holds a comma-separated list of Kafka bootstrap servers.
	KafkaVar = "MONGORELAY_TEST_KAFKA"
	// MongoVar holds a MongoDB connection string for the stand-in server.
	MongoVar = "MONGORELAY_TEST_MONGO"
	// MongoJarVar holds the path of the stand-in's runnable jar, for tests
	// that start a private instance with their own flags (a small oplog, say).
	MongoJarVar = "MONGORELAY_TEST_MONGO_JAR"
	// PythonVar holds the interpreter of the venv with the third-party clients
	// (confluent-kafka, fastavro, pymongo, pytest) that check our output.
	PythonVar = "MONGORELAY_TEST_PYTHON"
)

// Kafka returns the bootstrap servers of the test Kafka broker.
func Kafka(tb testing.TB) string {
	tb.Helper()
	return require(tb, KafkaVar)
}

// Mongo returns the connection string of the shared MongoDB stand-in.
func Mongo(tb testing.TB) string {
	tb.Helper()
	return require(tb, MongoVar)
}

// MongoJar returns the path of the MongoDB stand-in's jar.
func MongoJar(tb testing.TB) string {
	tb.Helper()
	return require(tb, MongoJarVar)
}

// Python returns the venv interpreter that has the third-party client libraries.
func Python(tb testing.TB) string {
	tb.Helper()
	return require(tb, PythonVar)
}

// Chromium returns the path of Debian's chromium, which `make env-up` installs, for the tests
// that drive the status page in a headless browser.
func Chromium(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	msg := "chromium is not installed: run `make env-up` (it installs Debian's chromium), or use `make test`"
	if InCI() {
		tb.Fatal(msg + " (CI=true: the status page's test must run)")
	}
	tb.Skip(msg)
	return ""
}

// InCI reports whether the tests run under CI, where nothing may be skipped
// for want of a server.
func InCI() bool {
	return os.Getenv("CI") == "true"
}

func require(tb testing.TB, name string) string {
	tb.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	msg := name + " is not set: run `make env-up` and `. .cache/env/env.sh`, or use `make test`"
	if InCI() {
		tb.Fatal(msg + " (CI=true: integration tests must run)")
	}
	tb.Skip(msg)
	return ""
}
