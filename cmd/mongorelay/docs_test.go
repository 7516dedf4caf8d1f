package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// commandLine is a mongorelay command in a page's code: its subcommand, the next word (leave,
// of worker leave) and the rest of its line up to a shell separator.
var commandLine = regexp.MustCompile(`(?:^|[\s/])mongorelay ([a-z]+)(?: ([a-z]+))?([^|;&\n` + "`" + `]*)`)

// flagWord is a --flag in a command line, without its value.
var flagWord = regexp.MustCompile(`(?:^|\s)--([a-z][a-z0-9-]*)`)

// TestOperationsGuideCommandsExist: every mongorelay command docs/operations.md shows, in a
// code block or a code span, names a subcommand that exists, and each of its --flags is one
// that subcommand's flag set lists, so the guide cannot send an operator to a flag the
// binary does not have.
func TestOperationsGuideCommandsExist(t *testing.T) {
	page, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, code := range codeOf(string(page)) {
		for _, m := range commandLine.FindAllStringSubmatch(code, -1) {
			args := []string{m[1]}
			rest := m[3]
			if m[1] == "worker" && m[2] == "leave" {
				args = append(args, m[2])
			} else {
				rest = " " + m[2] + rest
			}
			var help bytes.Buffer
			if code := run(context.Background(), append(args, "--help"), &help, &help); code != 0 {
				t.Errorf("`mongorelay %s`: the guide's subcommand does not exist (exit %d: %s)", strings.Join(args, " "), code, help.String())
				continue
			}
			checked++
			for _, f := range flagWord.FindAllStringSubmatch(rest, -1) {
				if f[1] == "help" {
					continue // every flag set takes it
				}
				if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(f[1]) + `(?:[ \t]|$)`).MatchString(help.String()) {
					t.Errorf("`mongorelay %s --%s`: the guide uses a flag the subcommand does not have", strings.Join(args, " "), f[1])
				}
			}
		}
	}
	if checked < 5 {
		t.Errorf("only %d mongorelay commands found in docs/operations.md: the extraction no longer matches the page", checked)
	}
}

// codeOf returns the code of a Markdown page: each fenced block (its lines joined where
// they end in a backslash) and each inline code span.
func codeOf(page string) []string {
	var code []string
	inBlock := false
	var block strings.Builder
	for _, line := range strings.Split(page, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			if inBlock {
				code = append(code, strings.ReplaceAll(block.String(), "\\\n", " "))
				block.Reset()
			}
			inBlock = !inBlock
			continue
		}
		if inBlock {
			block.WriteString(line + "\n")
			continue
		}
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(line, -1) {
			code = append(code, m[1])
		}
	}
	return code
}
