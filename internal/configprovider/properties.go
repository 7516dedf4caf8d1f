package configprovider

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// parseProperties reads a properties file as Java's Properties.load does, the way Kafka
// Connect's FileConfigProvider reads it (UTF-8): lines end at \n, \r\n or \r; blank lines and
// lines starting with # or ! are skipped; a line ending in an odd number of backslashes goes on
// on the next line, whose leading blanks are dropped; the key ends at the first unescaped '=',
// ':' or blank, and one '=' or ':' and the blanks around it separate it from the value; \t, \n,
// \r, \f and \uXXXX are escapes, and a backslash before any other character stands for that
// character. A later key wins. Errors name a line, never its text: it may be a secret.
func parseProperties(data []byte) (map[string]string, error) {
	numbered := numberLines(string(data))
	props := map[string]string{}
	for i := 0; i < len(numbered); i++ {
		first := numbered[i].n
		line := trimBlanks(numbered[i].text)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		for endsInOddBackslashes(line) {
			line = line[:len(line)-1]
			if i+1 == len(numbered) {
				break
			}
			i++
			line += trimBlanks(numbered[i].text)
		}
		key, value := splitProperty(line)
		k, err := unescape(key)
		if err == nil {
			var v string
			if v, err = unescape(value); err == nil {
				props[k] = v
				continue
			}
		}
		return nil, fmt.Errorf("line %d: %w", first, err)
	}
	return props, nil
}

type numberedLine struct {
	n    int
	text string
}

// numberLines splits s into its lines, ended by \n, \r\n or \r, numbered from 1.
func numberLines(s string) []numberedLine {
	var out []numberedLine
	for n := 1; s != ""; n++ {
		end := strings.IndexAny(s, "\r\n")
		if end < 0 {
			out = append(out, numberedLine{n, s})
			break
		}
		out = append(out, numberedLine{n, s[:end]})
		if strings.HasPrefix(s[end:], "\r\n") {
			end++
		}
		s = s[end+1:]
	}
	return out
}

// isBlank is Java's whitespace in a properties file: space, tab and form feed.
func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

func trimBlanks(s string) string {
	for s != "" && isBlank(s[0]) {
		s = s[1:]
	}
	return s
}

func endsInOddBackslashes(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitProperty splits a logical line into its key and value, still escaped.
func splitProperty(line string) (key, value string) {
	end, start, sep := len(line), len(line), false
	backslash := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		if !backslash && (c == '=' || c == ':' || isBlank(c)) {
			end, start, sep = i, i+1, c == '=' || c == ':'
			break
		}
		backslash = c == '\\' && !backslash
	}
	for start < len(line) {
		c := line[start]
		if !isBlank(c) {
			if sep || (c != '=' && c != ':') {
				break
			}
			sep = true
		}
		start++
	}
	return line[:end], line[start:]
}

// unescape replaces the escapes of a key or value.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			break // a last backslash that continued nothing stands for nothing
		}
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			r, n, err := unescapeUnicode(s[i+1:])
			if err != nil {
				return "", err
			}
			b.WriteRune(r)
			i += n
		default:
			// Any other character stands for itself, a multi-byte one whole.
			_, size := utf8.DecodeRuneInString(s[i:])
			b.WriteString(s[i : i+size])
			i += size - 1
		}
	}
	return b.String(), nil
}

// unescapeUnicode decodes the XXXX of a \uXXXX escape at the start of s, and the low half of a
// surrogate pair after it, as Java's UTF-16 strings join them. It returns the rune and how
// many bytes of s it used.
func unescapeUnicode(s string) (rune, int, error) {
	hi, ok := hex4(s)
	if !ok {
		return 0, 0, fmt.Errorf(`malformed \uXXXX escape: give four hex digits`)
	}
	if utf16.IsSurrogate(rune(hi)) && strings.HasPrefix(s[4:], `\u`) {
		if lo, ok := hex4(s[6:]); ok {
			if r := utf16.DecodeRune(rune(hi), rune(lo)); r != utf8.RuneError {
				return r, 10, nil
			}
		}
	}
	return rune(hi), 4, nil
}

func hex4(s string) (uint16, bool) {
	if len(s) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(s[:4], 16, 16)
	return uint16(n), err == nil
}
