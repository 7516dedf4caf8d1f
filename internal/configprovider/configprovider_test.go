package configprovider

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	tests := []struct {
		in   string
		want []Reference
	}{
		{"plain", nil},
		{"$ {env:X} ${env} {env:X}", nil},
		{"${env:MONGO_PW}", []Reference{{Text: "${env:MONGO_PW}", Provider: "env", Key: "MONGO_PW"}}},
		{"${file:/s/creds.properties:pw}", []Reference{{Text: "${file:/s/creds.properties:pw}", Provider: "file", Path: "/s/creds.properties", Key: "pw"}}},
		// As Kafka Connect's pattern: the path ends at the first colon, the key takes the rest.
		{"${file:/a:b:c}", []Reference{{Text: "${file:/a:b:c}", Provider: "file", Path: "/a", Key: "b:c"}}},
		{"mongodb://${env:U}:${directory:/run/secrets:mongo_pw}@h/",
			[]Reference{
				{Text: "${env:U}", Provider: "env", Key: "U"},
				{Text: "${directory:/run/secrets:mongo_pw}", Provider: "directory", Path: "/run/secrets", Key: "mongo_pw"},
			}},
		{"${vault:secret/x:y}", []Reference{{Text: "${vault:secret/x:y}", Provider: "vault", Path: "secret/x", Key: "y"}}},
	}
	for _, tt := range tests {
		if got := Find(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Find(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if got := Has(tt.in); got != (tt.want != nil) {
			t.Errorf("Has(%q) = %v", tt.in, got)
		}
	}
}

// secretDir writes a properties file and a directory of secret files, and returns their paths.
func secretDir(t *testing.T) (props, dir string) {
	t.Helper()
	root := t.TempDir()
	props = filepath.Join(root, "creds.properties")
	write(t, props, "# MongoDB credentials\nuser = cdc\npw=Tr0ub4dor:3\nempty=\n")
	dir = filepath.Join(root, "secrets")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "mongo_pw"), "Corr3ct-Horse\n")
	write(t, filepath.Join(dir, "crlf"), "line\r\n")
	write(t, filepath.Join(dir, "two_lines"), "a\nb\n\n")
	write(t, filepath.Join(dir, "raw"), "no newline")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "raw"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	return props, dir
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestResolve(t *testing.T) {
	props, dir := secretDir(t)
	t.Setenv("MR_TEST_USER", "cdc")
	t.Setenv("MR_TEST_EMPTY", "")
	tests := []struct{ in, want string }{
		{"no reference", "no reference"},
		{"${env:MR_TEST_USER}", "cdc"},
		{"${env:MR_TEST_EMPTY}", ""},
		{"${file:" + props + ":pw}", "Tr0ub4dor:3"},
		{"${file:" + props + ":empty}", ""},
		{"mongodb://${file:" + props + ":user}:${file:" + props + ":pw}@h:27017/", "mongodb://cdc:Tr0ub4dor:3@h:27017/"},
		{"${directory:" + dir + ":mongo_pw}", "Corr3ct-Horse"},
		{"${directory:" + dir + ":crlf}", "line"},
		{"${directory:" + dir + ":two_lines}", "a\nb\n"},
		{"${directory:" + dir + ":raw}", "no newline"},
		{"${directory:" + dir + ":link}", "no newline"},
		// A value is not searched again: a secret that looks like a reference stays one.
		{"${env:MR_TEST_LOOKS}", "${env:MR_TEST_USER}"},
	}
	t.Setenv("MR_TEST_LOOKS", "${env:MR_TEST_USER}")
	for _, tt := range tests {
		got, err := Resolve(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestResolveErrors checks that every failure names the reference and the fix, and never a
// value it read.
func TestResolveErrors(t *testing.T) {
	props, dir := secretDir(t)
	bad := filepath.Join(t.TempDir(), "bad.properties")
	write(t, bad, "ok=Tr0ub4dor:3\nbroken=Tr0ub4dor\\u12\n")
	tests := []struct {
		in   string
		want []string // parts of the message
	}{
		{"${vault:secret/x:y}", []string{"${vault:secret/x:y}", `no config provider "vault"`, "use env", "file", "directory"}},
		{"${env:MR_TEST_UNSET}", []string{"${env:MR_TEST_UNSET}", `"MR_TEST_UNSET" is not set on this node`, "set it in the environment"}},
		{"${env:/x:NAME}", []string{"takes no path", "${env:NAME}"}},
		{"${file:" + props + ":password}", []string{props, `no key "password"`, "add a line password=<value>"}},
		{"${file:/nonexistent/c.properties:pw}", []string{"/nonexistent/c.properties", "no such file", "must exist on every worker"}},
		{"${file:pw}", []string{"no file named", "${file:/path/to/file.properties:pw}"}},
		{"${file:" + bad + ":ok}", []string{"line 2", `malformed \uXXXX`}},
		{"${directory:" + dir + ":missing}", []string{dir, `no file "missing"`, "create it"}},
		{"${directory:" + dir + ":sub}", []string{"not a regular file"}},
		{"${directory:" + dir + ":../creds.properties}", []string{"is not the name of a file"}},
		{"${directory:/nonexistent:pw}", []string{"directory /nonexistent", "must exist on every worker"}},
		{"${directory:" + props + ":pw}", []string{"not a directory"}},
		{"${directory:pw}", []string{"no directory named"}},
	}
	for _, tt := range tests {
		got, err := Resolve("prefix " + tt.in)
		if err == nil {
			t.Errorf("Resolve(%q) = %q, want an error", tt.in, got)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Resolve(%q) error %q does not say %q", tt.in, err, w)
			}
		}
		if strings.Contains(err.Error(), "Tr0ub4dor") || strings.Contains(err.Error(), "Corr3ct") {
			t.Errorf("Resolve(%q) error shows a secret: %v", tt.in, err)
		}
	}
}

func TestParseProperties(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string
	}{
		{"separators", "a=1\nb:2\nc 3\nd = 4\ne\t:\t5\nf\n", map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": ""}},
		{"comments and blanks", "# c\n  ! c\n\n \t\nk=v # not a comment\n", map[string]string{"k": "v # not a comment"}},
		{"line endings", "a=1\r\nb=2\rc=3", map[string]string{"a": "1", "b": "2", "c": "3"}},
		{"trailing blanks kept", "k=v  \n", map[string]string{"k": "v  "}},
		{"value holds separators", "url=mongodb://u:p@h:1/?a=b", map[string]string{"url": "mongodb://u:p@h:1/?a=b"}},
		{"only the first separator", "k==v\nj= :v", map[string]string{"k": "=v", "j": ":v"}},
		{"continuation", "k=a\\\n   b\\\n\tc\nnext=1", map[string]string{"k": "abc", "next": "1"}},
		{"continued line is not a comment", "k=a\\\n#b", map[string]string{"k": "a#b"}},
		{"continuation at the end", "k=a\\", map[string]string{"k": "a"}},
		{"even backslashes end the line", "k=a\\\\\nj=b", map[string]string{"k": `a\`, "j": "b"}},
		{"escapes", `k=\t\n\r\f\u0041\u00e9\q\\\=`, map[string]string{"k": "\t\n\r\fAéq\\="}},
		{"surrogate pair", `k=\ud83d\ude00`, map[string]string{"k": "😀"}},
		{"escaped key separators", `a\=b\:c\ d=v`, map[string]string{"a=b:c d": "v"}},
		{"utf-8", "clé=mot de passe é", map[string]string{"clé": "mot de passe é"}},
		{"later key wins", "k=1\nk=2", map[string]string{"k": "2"}},
		{"empty", "", map[string]string{}},
	}
	for _, tt := range tests {
		got, err := parseProperties([]byte(tt.in))
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: parseProperties(%q) = %q, %v; want %q", tt.name, tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{`k=\u12`, `k=\uzzzz`, "a=1\n\nk=\\u12x"} {
		if _, err := parseProperties([]byte(in)); err == nil || strings.Contains(err.Error(), "k=") {
			t.Errorf("parseProperties(%q) error = %v, want a malformed escape naming only the line", in, err)
		}
	}
}
