package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testLayout = "../../archive/testdata/layout"

func runArchive(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(append([]string{"ocitools", "archive"}, args...))
	return out.String(), err
}

func TestArchiveCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "image.tar")
	if _, err := runArchive(t, "--name", "hello", testLayout, file); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o444 {
		t.Errorf("archive mode %v, want read-only", st.Mode().Perm())
	}
	// FILE - writes the same bytes to standard output.
	stdout, err := runArchive(t, "--name", "hello", testLayout, "-")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	if !bytes.Equal(data, []byte(stdout)) {
		t.Error("the archive on standard output differs from the file")
	}
	// A failure leaves nothing: neither the file nor a temporary one.
	bad := filepath.Join(dir, "bad.tar")
	_, err = runArchive(t, "--name", "Not A Name", testLayout, bad)
	if err == nil || !strings.Contains(err.Error(), "`name` must be an image name") {
		t.Fatalf("bad name: error %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("after a failed archive the directory holds %v, want only image.tar", names)
	}
	// Usage errors exit 2.
	if _, err := runArchive(t, testLayout); err == nil || !strings.Contains(err.Error(), "expected two arguments") {
		t.Errorf("one argument: error %v", err)
	}
}
