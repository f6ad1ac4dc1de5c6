package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestValidateCommand(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		stdout   string
		stderr   []string
		errLines int
	}{
		{[]string{"../../spec/testdata/bundles/ok"}, 0, "../../spec/testdata/bundles/ok: valid\n", nil, 0},
		{[]string{"../../spec/testdata/bundles/nixpkgs"}, 1, "", []string{"got null, want array", `unknown field "platform"`}, 2},
		{[]string{"../../spec/testdata/bundles/bad"}, 1, "", []string{"appears more than once", "needs a uts namespace"}, 6},
		{[]string{"/nonexistent"}, 1, "", []string{"reading the configuration"}, 1},
		{nil, 2, "", nil, 0},
		{[]string{"a", "b"}, 2, "", nil, 0},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			app := newApp()
			var out, errOut bytes.Buffer
			app.Writer, app.ErrWriter = &out, &errOut
			err := app.Run(append([]string{"ocitools", "validate"}, tt.args...))
			code := 0
			var coder cli.ExitCoder
			if errors.As(err, &coder) {
				code = coder.ExitCode()
			} else if err != nil {
				t.Fatalf("error without an exit code: %v", err)
			}
			if code != tt.code || out.String() != tt.stdout {
				t.Errorf("code %d stdout %q (err %v), want %d %q", code, out.String(), err, tt.code, tt.stdout)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
			if n := strings.Count(errOut.String(), "\n"); tt.errLines > 0 && n != tt.errLines {
				t.Errorf("%d problem lines, want %d:\n%s", n, tt.errLines, errOut.String())
			}
		})
	}
}
