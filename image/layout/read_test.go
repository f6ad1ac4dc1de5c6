package layout

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// The reader takes a written layout back, and refuses what a hostile one
// plants: each case damages a fresh layout holding one blob.
func TestReader(t *testing.T) {
	const content = `{"a":"1"}`
	setup := func(t *testing.T) (string, v1.Descriptor) {
		dir := filepath.Join(t.TempDir(), "l")
		l, err := Create(dir)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := l.WriteJSON(v1.MediaTypeImageConfig, map[string]string{"a": "1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.WriteIndex(desc, "v1"); err != nil {
			t.Fatal(err)
		}
		return dir, desc
	}
	blob := func(dir string, d v1.Descriptor) string {
		return filepath.Join(dir, "blobs", "sha256", d.Digest.Encoded())
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string, d *v1.Descriptor)
		want   string // "" when the blob reads back
	}{
		{"intact", func(*testing.T, string, *v1.Descriptor) {}, ""},
		{"symlinked blob", func(t *testing.T, dir string, d *v1.Descriptor) {
			other := filepath.Join(t.TempDir(), "blob")
			if err := os.Rename(blob(dir, *d), other); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(other, blob(dir, *d)); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"same size, other bytes", func(t *testing.T, dir string, d *v1.Descriptor) {
			os.Remove(blob(dir, *d))
			os.WriteFile(blob(dir, *d), []byte(strings.ToUpper(content)), 0o644)
		}, "does not match its digest"},
		{"other size", func(t *testing.T, dir string, d *v1.Descriptor) {
			os.Remove(blob(dir, *d))
			os.WriteFile(blob(dir, *d), []byte(content+" "), 0o644)
		}, "its descriptor declares"},
		{"missing", func(t *testing.T, dir string, d *v1.Descriptor) { os.Remove(blob(dir, *d)) }, "is missing from"},
		{"fifo", func(t *testing.T, dir string, d *v1.Descriptor) {
			os.Remove(blob(dir, *d))
			if err := syscall.Mkfifo(blob(dir, *d), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"device", func(t *testing.T, dir string, d *v1.Descriptor) {
			os.Remove(blob(dir, *d))
			if err := os.Symlink("/dev/zero", blob(dir, *d)); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"digest naming a path", func(t *testing.T, dir string, d *v1.Descriptor) {
			d.Digest = digest.Digest("sha256:../../../etc/passwd")
		}, "digest"},
		{"over the limit", func(t *testing.T, dir string, d *v1.Descriptor) { d.Size = 1 << 30 }, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, d := setup(t)
			tt.damage(t, dir, &d)
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := r.Index()
			if err != nil || len(idx.Manifests) != 1 {
				t.Fatalf("Index: %v, %v", idx, err)
			}
			data, err := r.ReadBlob(d, 4096)
			if tt.want == "" {
				if err != nil || string(data) != content {
					t.Errorf("ReadBlob: %q, %v", data, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadBlob: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, layout, want string
	}{
		{"no oci-layout", "", "has no oci-layout file"},
		{"not JSON", "{", "not valid JSON"},
		{"other version", `{"imageLayoutVersion":"2.0.0"}`, `"2.0.0" is not "1.0.0"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.layout != "" {
				os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(tt.layout), 0o644)
			}
			if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: %v, want %q", err, tt.want)
			}
		})
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	if err := syscall.Mkfifo(filepath.Join(dir, "index.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Index(); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("index.json a FIFO: %v", err)
	}
}
