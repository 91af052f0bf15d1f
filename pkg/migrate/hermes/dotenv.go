// SPDX-License-Identifier: Apache-2.0

package hermes

import (
	"fmt"
	"regexp"
	"strings"
)

// EnvVar is one assignment of a .env file.
type EnvVar struct {
	Name  string
	Value string
	// Line is the 1-based line the assignment starts on.
	Line int
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// ParseDotenv reads a .env file the way Hermes' loader (python-dotenv)
// does: KEY=VALUE lines, an optional "export " prefix, # comments (whole
// lines, or after whitespace in an unquoted value), single quotes (literal,
// except \' and \\), double quotes (\n, \t, \r, \", \\ escapes; may span
// lines), CRLF line ends and a UTF-8 byte order mark. A later assignment of
// a name wins. Lines it cannot read are reported by line number only: a
// warning never contains a value, which may be a secret.
func ParseDotenv(data []byte) (vars []EnvVar, warnings []string) {
	text := strings.TrimPrefix(string(data), "\ufeff")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export"); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "\t")) {
			line = strings.TrimSpace(rest)
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || !envName.MatchString(name) {
			warnings = append(warnings, fmt.Sprintf(".env line %d: not a NAME=VALUE assignment; ignored", start))
			continue
		}
		value = strings.TrimLeft(value, " \t")
		switch {
		case strings.HasPrefix(value, `"`):
			// A double-quoted value may continue on the following lines.
			body := value[1:]
			for {
				v, end, closed := unquoteDouble(body)
				if closed {
					if !trailingOK(body[end:]) {
						warnings = append(warnings, fmt.Sprintf(".env line %d: text after the closing quote; ignored", start))
					}
					value = v
					break
				}
				if i+1 >= len(lines) {
					warnings = append(warnings, fmt.Sprintf(".env line %d: unterminated double quote; %s ignored", start, name))
					name = ""
					break
				}
				i++
				body += "\n" + lines[i]
			}
		case strings.HasPrefix(value, `'`):
			v, end, closed := unquoteSingle(value[1:])
			if !closed {
				warnings = append(warnings, fmt.Sprintf(".env line %d: unterminated single quote; %s ignored", start, name))
				name = ""
				break
			}
			if !trailingOK(value[1+end:]) {
				warnings = append(warnings, fmt.Sprintf(".env line %d: text after the closing quote; ignored", start))
			}
			value = v
		default:
			// Unquoted: a # after whitespace starts a comment.
			for j := 0; j < len(value); j++ {
				if value[j] == '#' && (j == 0 || value[j-1] == ' ' || value[j-1] == '\t') {
					value = value[:j]
					break
				}
			}
			value = strings.TrimSpace(value)
		}
		if name == "" {
			continue
		}
		vars = append(vars, EnvVar{Name: name, Value: value, Line: start})
	}
	return vars, warnings
}

// unquoteDouble decodes s up to its closing double quote. end is the index
// just after that quote.
func unquoteDouble(s string) (v string, end int, closed bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), i + 1, true
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '"', '\\', '\'':
				b.WriteByte(s[i])
			default:
				b.WriteByte('\\')
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

// unquoteSingle decodes s up to its closing single quote: literal text
// except \' and \\.
func unquoteSingle(s string) (v string, end int, closed bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			return b.String(), i + 1, true
		case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '\\'):
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

// trailingOK reports whether s, the rest of a line after a closing quote,
// is empty or a comment.
func trailingOK(s string) bool {
	s = strings.TrimSpace(s)
	return s == "" || strings.HasPrefix(s, "#")
}
