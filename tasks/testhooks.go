//go:build testhooks

package tasks

import (
	"fmt"
	"os"

	"github.com/mongorelay/mongorelay/tasks/envelope"
)

// PanicIDEnv names, in a binary built with the testhooks tag only, the string _id of a document
// whose conversion panics: the end-to-end test of panic isolation (DESIGN.md 13) feeds such a
// poison document to one task of a node.
const PanicIDEnv = "MONGORELAY_TEST_PANIC_ID"

// conversionHook panics on the document PanicIDEnv names.
func conversionHook(ev *envelope.Event) {
	id, ok := ev.ID().StringValueOK()
	if want := os.Getenv(PanicIDEnv); ok && want != "" && id == want {
		panic(fmt.Sprintf("test hook %s: converting document %q", PanicIDEnv, id))
	}
}
