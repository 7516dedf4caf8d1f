// Package docs holds the user documentation; its test keeps the pages honest about the code.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// message is a quoted error message on the troubleshooting page: the first code span after
// "**Message:**", and any more on the same line.
var message = regexp.MustCompile("`([^`]+)`")

// TestEveryTroubleshootingMessageExistsInTheCode: a message the page quotes is found, word for
// word, in the product's Go code (its non-test files), so the page cannot describe errors the
// code no longer gives. Parts in angle brackets vary and are not looked for.
func TestEveryTroubleshootingMessageExistsInTheCode(t *testing.T) {
	page, err := os.ReadFile("troubleshooting.md")
	if err != nil {
		t.Fatal(err)
	}
	code := productCode(t)
	checked := 0
	for _, line := range strings.Split(string(page), "\n") {
		if !strings.HasPrefix(line, "**Message:**") {
			continue
		}
		for _, m := range message.FindAllStringSubmatch(line, -1) {
			for _, part := range regexp.MustCompile(`<[^>]*>`).Split(m[1], -1) {
				part = strings.TrimSpace(part)
				if len(part) < 6 {
					continue
				}
				checked++
				if !strings.Contains(code, part) {
					t.Errorf("troubleshooting.md quotes %q, which no Go file of the product contains", part)
				}
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d messages checked: the page's **Message:** lines changed shape", checked)
	}
}

// productCode is the text of every non-test Go file of the product (not the benchmarks).
func productCode(t *testing.T) string {
	var b strings.Builder
	for _, dir := range []string{"../api", "../cmd", "../coordinator", "../internal", "../registry", "../tasks", "../worker"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			data, err := os.ReadFile(path)
			b.Write(data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
