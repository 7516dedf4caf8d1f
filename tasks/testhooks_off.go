//go:build !testhooks

package tasks

import "github.com/mongorelay/mongorelay/tasks/envelope"

// conversionHook does nothing outside test binaries (testhooks.go).
func conversionHook(*envelope.Event) {}
