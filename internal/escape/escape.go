// Package escape makes text that came from someone else (a registry's error
// body, a header, a repository name) safe to print on a terminal: control
// characters are shown as escapes instead of being sent, so that such text
// cannot move the cursor, retitle the window or fake a line of our own.
package escape

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Line escapes every control character (newlines too) and every byte that
// is not UTF-8: the result is one line.
func Line(s string) string { return escape(s, false) }

// Text escapes control characters except newline and tab, for a message of
// several lines whose own line breaks are meant.
func Text(s string) string { return escape(s, true) }

func escape(s string, keepLines bool) string {
	if clean(s, keepLines) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keepLines && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// isControl: C0, DEL and C1 (0x80-0x9f; a terminal may take U+009B as CSI).
func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) }

func clean(s string, keepLines bool) bool {
	for _, r := range s {
		if r == utf8.RuneError || (isControl(r) && !(keepLines && (r == '\n' || r == '\t'))) {
			return false
		}
	}
	return true
}

// Error wraps err so that its text is escaped as Line does; errors.Is and
// errors.As still see err.
func Error(err error) error {
	if err == nil {
		return nil
	}
	return escaped{err}
}

type escaped struct{ err error }

func (e escaped) Error() string { return Line(e.err.Error()) }
func (e escaped) Unwrap() error { return e.err }
