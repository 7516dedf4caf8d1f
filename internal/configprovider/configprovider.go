// Package configprovider resolves Kafka Connect's config provider references in connector
// config values (${env:NAME}, ${file:/path/file.properties:key}, ${directory:/path/dir:file})
// from the environment and files of the node it runs on, so that a config is stored and shown
// with the reference and only the node that uses a value ever reads it (DESIGN.md 14).
package configprovider

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The providers, under the names Kafka Connect workers conventionally give them
// (config.providers=env,file,directory).
const (
	// Env is an environment variable of the node: ${env:NAME}.
	Env = "env"
	// File is a key of a Java properties file: ${file:/path/file.properties:key}.
	File = "file"
	// Directory is the content of a file in a directory, as Kubernetes and Docker mount
	// secrets: ${directory:/path/dir:file}.
	Directory = "directory"
)

// pattern is Kafka Connect's ConfigTransformer pattern, ${provider:[path:]key}: the provider
// and the path end at the first ':' after them, and the key may hold further colons.
var pattern = regexp.MustCompile(`\$\{([^}]*?):(?:([^}]*?):)?([^}]*?)\}`)

// Reference is one ${provider:[path:]key} in a config value.
type Reference struct {
	// Text is the reference as written, ${...} included.
	Text     string
	Provider string
	// Path is the file or directory; "" when the reference has none (${env:NAME}).
	Path string
	Key  string
}

// Has reports whether v holds a reference.
func Has(v string) bool { return pattern.MatchString(v) }

// Find returns the references in v, in order.
func Find(v string) []Reference {
	var out []Reference
	for _, m := range pattern.FindAllStringSubmatch(v, -1) {
		out = append(out, Reference{Text: m[0], Provider: m[1], Path: m[2], Key: m[3]})
	}
	return out
}

// Replace returns v with every reference replaced by what fn gives for it, or fn's first
// error. Text outside references is kept as it is: Kafka Connect has no escape for "${".
func Replace(v string, fn func(Reference) (string, error)) (string, error) {
	var b strings.Builder
	last := 0
	for _, m := range pattern.FindAllStringSubmatchIndex(v, -1) {
		r := Reference{Text: v[m[0]:m[1]], Provider: v[m[2]:m[3]], Key: v[m[6]:m[7]]}
		if m[4] >= 0 {
			r.Path = v[m[4]:m[5]]
		}
		value, err := fn(r)
		if err != nil {
			return "", err
		}
		b.WriteString(v[last:m[0]])
		b.WriteString(value)
		last = m[1]
	}
	if last == 0 {
		return v, nil
	}
	b.WriteString(v[last:])
	return b.String(), nil
}

// Resolve returns v with every reference replaced by its value on this node (Lookup). A value
// is not searched for references again, as in Kafka Connect.
func Resolve(v string) (string, error) { return Replace(v, Lookup) }

// Lookup reads the value of r on this node: the environment variable, the properties file's
// key or the directory's file, read anew at every call. Its errors name the reference and
// the fix, never a value read.
func Lookup(r Reference) (string, error) {
	var v string
	var err error
	switch r.Provider {
	case Env:
		v, err = lookupEnv(r)
	case File:
		v, err = lookupFile(r)
	case Directory:
		v, err = lookupDirectory(r)
	default:
		err = fmt.Errorf("there is no config provider %q: use %s (an environment variable), %s (a key of a properties file) or %s (a file of a directory)",
			r.Provider, Env, File, Directory)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", r.Text, err)
	}
	return v, nil
}

func lookupEnv(r Reference) (string, error) {
	if r.Path != "" {
		return "", fmt.Errorf("the %s provider takes no path: write ${%s:%s}", Env, Env, r.Key)
	}
	v, ok := os.LookupEnv(r.Key)
	if !ok {
		return "", fmt.Errorf("environment variable %q is not set on this node: set it in the environment of every worker that validates or runs the connector", r.Key)
	}
	return v, nil
}

func lookupFile(r Reference) (string, error) {
	if r.Path == "" {
		return "", fmt.Errorf("no file named: write ${%s:/path/to/file.properties:%s}", File, r.Key)
	}
	data, err := os.ReadFile(r.Path)
	if err != nil {
		return "", fmt.Errorf("read properties file: %w (the file must exist on every worker that validates or runs the connector)", err)
	}
	props, err := parseProperties(data)
	if err != nil {
		return "", fmt.Errorf("properties file %s: %w", r.Path, err)
	}
	v, ok := props[r.Key]
	if !ok {
		return "", fmt.Errorf("properties file %s has no key %q: add a line %s=<value> to it", r.Path, r.Key, r.Key)
	}
	return v, nil
}

func lookupDirectory(r Reference) (string, error) {
	if r.Path == "" {
		return "", fmt.Errorf("no directory named: write ${%s:/path/to/dir:%s}", Directory, r.Key)
	}
	if r.Key == "" || r.Key == "." || r.Key == ".." || strings.ContainsRune(r.Key, filepath.Separator) {
		return "", fmt.Errorf("%q is not the name of a file: name one file of directory %s", r.Key, r.Path)
	}
	if st, err := os.Stat(r.Path); err != nil || !st.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return "", fmt.Errorf("directory %s: %w (it must exist on every worker that validates or runs the connector)", r.Path, err)
	}
	path := filepath.Join(r.Path, r.Key)
	// Stat follows symbolic links, as Kafka Connect does: Kubernetes mounts a secret's files
	// as links into a hidden directory.
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("directory %s has no file %q: create it, holding the value", r.Path, r.Key)
	}
	if err == nil && !st.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		return "", fmt.Errorf("file %s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	// Unlike Kafka Connect, which keeps the whole content, one line ending at the end is
	// dropped: a file written by echo or an editor holds the value and a newline, and a
	// password never ends with one.
	v := string(data)
	if s, ok := strings.CutSuffix(v, "\n"); ok {
		v = strings.TrimSuffix(s, "\r")
	}
	return v, nil
}
