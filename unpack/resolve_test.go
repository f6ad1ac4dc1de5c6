package unpack

import (
	"context"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/image/layout/layouttest"
)

var linuxAMD64 = Platform{OS: "linux", Architecture: "amd64"}

// An index that fans out (k indexes each listing the same k indexes, three
// levels) with no image for the platform is searched once per distinct
// index: it took 4 s at k=50 when every path was searched (k^3 reads).
func TestResolveFanOutIsLinear(t *testing.T) {
	dir := t.TempDir()
	leaf := layouttest.Must(layouttest.Image(dir, "linux", "s390x", make([]byte, 1024)))
	if err := layouttest.FanOut(dir, 100, 3, leaf); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := (&Layout{Dir: dir}).Resolve(context.Background(), "", linuxAMD64)
	if err == nil || !strings.Contains(err.Error(), "no image for platform linux/amd64") {
		t.Errorf("got %v", err)
	}
	// k^3 = a million reads when every path is searched: minutes. The
	// bound tells that from linear (about 0.1 s) even on a loaded machine.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %s", d)
	}
}

// An image nested deeper than the walker reads is reported as such, not as
// a missing platform.
func TestResolveNestedTooDeep(t *testing.T) {
	dir := t.TempDir()
	leaf := layouttest.Must(layouttest.Image(dir, "linux", "amd64", make([]byte, 1024)))
	if err := layouttest.Nested(dir, layout.MaxDepth+1, leaf); err != nil {
		t.Fatal(err)
	}
	_, err := (&Layout{Dir: dir}).Resolve(context.Background(), "", linuxAMD64)
	if err == nil || !strings.Contains(err.Error(), "nested too deep") {
		t.Errorf("got %v", err)
	}
}

// A child that cannot be read stops the search, named, instead of being
// passed over for a "no image" error.
func TestResolveStopsAtChildError(t *testing.T) {
	dir := t.TempDir()
	leaf := layouttest.Must(layouttest.Image(dir, "linux", "amd64", make([]byte, 1024)))
	broken := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.Digest("sha256:" + strings.Repeat("0", 64)), Size: 10}
	inner := layouttest.Must(layouttest.PutJSON(dir, ocispec.MediaTypeImageIndex, layouttest.Index(leaf)))
	root := layouttest.Must(layouttest.PutJSON(dir, ocispec.MediaTypeImageIndex, layouttest.Index(broken, inner)))
	if err := layouttest.WriteTop(dir, root); err != nil {
		t.Fatal(err)
	}
	_, err := (&Layout{Dir: dir}).Resolve(context.Background(), "", linuxAMD64)
	if err == nil || !strings.Contains(err.Error(), "is missing") || !strings.Contains(err.Error(), broken.Digest.String()) {
		t.Errorf("got %v", err)
	}
}

// An index listing thousands of platforms is named by a few and a count.
func TestResolvePlatformListCut(t *testing.T) {
	dir := t.TempDir()
	leaf := layouttest.Must(layouttest.Image(dir, "linux", "s390x", make([]byte, 1024)))
	var ms []ocispec.Descriptor
	for i := 0; i < 18000; i++ {
		d := leaf
		d.Platform = &ocispec.Platform{OS: "linux", Architecture: "arch" + strings.Repeat("x", i%7), Variant: "v" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))}
		ms = append(ms, d)
	}
	root := layouttest.Must(layouttest.PutJSON(dir, ocispec.MediaTypeImageIndex, layouttest.Index(ms...)))
	if err := layouttest.WriteTop(dir, root); err != nil {
		t.Fatal(err)
	}
	_, err := (&Layout{Dir: dir}).Resolve(context.Background(), "", linuxAMD64)
	if err == nil || !strings.Contains(err.Error(), "and 17992 more") || len(err.Error()) > 600 {
		t.Errorf("got %d bytes: %.600v", len(err.Error()), err)
	}
}
