package escape

import (
	"errors"
	"io"
	"testing"
)

func TestEscape(t *testing.T) {
	for _, c := range []struct{ in, line, text string }{
		{"plain text", "plain text", "plain text"},
		{"two\nlines\tand tab", `two\x0alines\x09and tab`, "two\nlines\tand tab"},
		{"\x1b]0;pwned\x07title", `\x1b]0;pwned\x07title`, `\x1b]0;pwned\x07title`},
		{"\x1b[2J\x1b[1;1Hocitools: pushed", `\x1b[2J\x1b[1;1Hocitools: pushed`, `\x1b[2J\x1b[1;1Hocitools: pushed`},
		{"csi \u009b31m", `csi \x9b31m`, `csi \x9b31m`},
		{"bad \xff byte", `bad \xff byte`, `bad \xff byte`},
		{"del \x7f", `del \x7f`, `del \x7f`},
		{"ünïcode ok", "ünïcode ok", "ünïcode ok"},
	} {
		if got := Line(c.in); got != c.line {
			t.Errorf("Line(%q) = %q, want %q", c.in, got, c.line)
		}
		if got := Text(c.in); got != c.text {
			t.Errorf("Text(%q) = %q, want %q", c.in, got, c.text)
		}
	}
}

func TestError(t *testing.T) {
	err := Error(errors.Join(errors.New("body: \x1b[31mred"), io.EOF))
	if got, want := err.Error(), `body: \x1b[31mred\x0aEOF`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(err, io.EOF) {
		t.Error("errors.Is lost the wrapped error")
	}
	if Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
}

func FuzzLine(f *testing.F) {
	f.Add("a\x1b[0m\n\xff")
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range Line(s) {
			if isControl(r) {
				t.Fatalf("Line(%q) kept control character %U", s, r)
			}
		}
	})
}
