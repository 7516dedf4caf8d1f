// Package ui is the status page (DESIGN.md 15): one HTML page, its style and script inline,
// embedded in the binary so that it needs no build step and no file beside the binary. The
// page reads the REST API it is served by (GET /cluster, GET /connectors?expand=status&
// expand=info) every 2 seconds and calls it to pause, resume and restart connectors.
package ui

import _ "embed"

// page is the status page, served as it is.
//
//go:embed index.html
var page []byte

// Page returns the status page's HTML.
func Page() []byte { return page }
