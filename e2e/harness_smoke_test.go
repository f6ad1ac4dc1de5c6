package e2e

import (
	"os"
	"strings"
	"testing"
)

// The harness itself: a script built in the sandbox from busybox runs.
func TestHarnessWriteScript(t *testing.T) {
	out := nixBuild(t, `writeScript "hi" "#!${busybox}/bin/sh\necho hi"`)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(data), "\necho hi") {
		t.Fatalf("script holds %q", data)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("script is not executable: %v %v", fi.Mode(), err)
	}
}
