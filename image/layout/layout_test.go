package layout

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "l")
	l, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir); err == nil {
		t.Error("Create over an existing directory succeeded")
	}
	desc, err := l.WriteJSON(v1.MediaTypeImageConfig, map[string]string{"b": "2", "a": "1"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(l.BlobPath(desc.Digest))
	if err != nil || string(data) != `{"a":"1","b":"2"}` || digest.FromBytes(data) != desc.Digest || desc.Size != int64(len(data)) {
		t.Errorf("blob %q, descriptor %+v", data, desc)
	}
	if err := l.WriteIndex(desc, "v1"); err != nil {
		t.Fatal(err)
	}
	var idx v1.Index
	raw, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if err := json.Unmarshal(raw, &idx); err != nil || idx.Manifests[0].Annotations[v1.AnnotationRefName] != "v1" {
		t.Errorf("index.json %s", raw)
	}
	hdr, _ := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if string(hdr) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout %s", hdr)
	}
}

// CopyBlob checks digest and size on the way and leaves nothing behind when
// they do not match.
func TestCopyBlob(t *testing.T) {
	l, err := Create(filepath.Join(t.TempDir(), "l"))
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("layer bytes")
	d := digest.FromBytes(content)
	for _, tc := range []struct {
		name string
		data []byte
		d    digest.Digest
		size int64
		want string
	}{
		{"ok", content, d, int64(len(content)), ""},
		{"short", content[:3], d, int64(len(content)), "got 3 bytes, its descriptor declares 11"},
		{"long", append(append([]byte{}, content...), 'x'), d, int64(len(content)), "got more than 11 bytes"},
		{"other digest", []byte("other bytes"), d, int64(len(content)), "content with digest sha256:"},
		{"sha512", content, digest.SHA512.FromBytes(content), int64(len(content)), ""}, {"bad digest", content, digest.Digest("sha256:x"), 11, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.CopyBlob(bytes.NewReader(tc.data), tc.d, tc.size)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
			left, _ := filepath.Glob(filepath.Join(l.Dir, "blobs", "sha256", ".partial-*"))
			if len(left) != 0 {
				t.Errorf("left %v", left)
			}
		})
	}
}

// LinkBlob links instead of copying; the Reader follows the link and checks
// the digest; a target of another size is refused at once.
func TestLinkBlob(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "l")
	l, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "blob")
	data := []byte("layer bytes")
	if err := os.WriteFile(target, data, 0o644); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(data)
	if err := l.LinkBlob(target, d, int64(len(data))+1); err == nil || !strings.Contains(err.Error(), "not a regular file of") {
		t.Errorf("a target of another size: %v", err)
	}
	for i := 0; i < 2; i++ { // twice: the same blob twice keeps one link
		if err := l.LinkBlob(target, d, int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := os.Readlink(l.BlobPath(d)); err != nil || got != target {
		t.Fatalf("blob is %q (%v), want a link to %s", got, err, target)
	}
	r := &Reader{Dir: dir}
	got, err := r.ReadBlob(v1.Descriptor{Digest: d, Size: int64(len(data))}, 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("reading the linked blob: %q, %v", got, err)
	}
}
