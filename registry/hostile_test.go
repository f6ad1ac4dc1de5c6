package registry

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/layout/layouttest"
	"github.com/ocitools/ocitools/registry/registrytest"
)

func hostilePull(t *testing.T, ctx context.Context, s *registrytest.Server, o Options) (time.Duration, error) {
	t.Helper()
	ref, err := ParseRef(s.Host + "/hostile:v1")
	if err != nil {
		t.Fatal(err)
	}
	o.PlainHTTP, o.Cache = true, "-"
	parent := t.TempDir()
	start := time.Now()
	_, err = Pull(ctx, ref, filepath.Join(parent, "out"), o)
	took := time.Since(start)
	if err == nil {
		t.Fatal("pull from a hostile registry succeeded")
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Errorf("pull left %s behind", left[0].Name())
	}
	t.Logf("after %s: %v", took, err)
	return took, err
}

// A blob whose headers never arrive takes the response-headers deadline
// once: it is not retried (4 tries of it were 4 times the documented wait),
// and the error names the deadline and its flag.
func TestHostileHeadersNeverArrive(t *testing.T) {
	s := registrytest.New(t, registrytest.NoHeaders)
	took, err := hostilePull(t, context.Background(), s, Options{Headers: 300 * time.Millisecond})
	if n := s.Count("layer"); n != 1 {
		t.Errorf("%d requests for the layer, want 1", n)
	}
	// One request is the check; the bound only tells the deadline from no
	// deadline (the server never answers), with room for a loaded machine.
	if took > 15*time.Second {
		t.Errorf("took %s for a 300ms deadline", took)
	}
	for _, want := range []string{"response headers deadline (300ms) passed", "--response-timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// A transient failure is tried as many times as the message says, and no
// more: one retry layer.
func TestHostileRetriesCounted(t *testing.T) {
	s := registrytest.New(t, registrytest.Status)
	s.Status, s.Body = 503, `{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}`
	_, err := hostilePull(t, context.Background(), s, Options{})
	if n := s.Count("layer"); n != defaultAttempts {
		t.Errorf("%d requests for the layer, want %d", n, defaultAttempts)
	}
	if want := "gave up after 4 attempts"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// What a registry says reaches the terminal escaped: an ESC sequence in an
// error body cannot clear the screen or fake a line.
func TestHostileErrorBodyEscaped(t *testing.T) {
	s := registrytest.New(t, registrytest.Status)
	s.Status, s.Body = 400, "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"\\u001b[2J\\u001b]0;owned\\u0007\\nocitools: pulled fine\"}]}"
	_, err := hostilePull(t, context.Background(), s, Options{})
	msg := err.Error()
	if strings.ContainsAny(msg, "\x1b\x07\n") {
		t.Errorf("control characters reached the message: %q", msg)
	}
	if !strings.Contains(msg, `\x1b[2J`) {
		t.Errorf("the body is not shown escaped: %q", msg)
	}
}

// The whole command's --timeout is named when it fires.
func TestHostileCommandTimeoutNamed(t *testing.T) {
	s := registrytest.New(t, registrytest.Trickle)
	ctx, cancel := context.WithTimeoutCause(context.Background(), 500*time.Millisecond, CommandDeadline(500*time.Millisecond))
	defer cancel()
	took, err := hostilePull(t, ctx, s, Options{})
	if took > 15*time.Second { // the trickle never ends: no deadline, no end
		t.Errorf("took %s for a 500ms --timeout", took)
	}
	if want := "whole command deadline (500ms) passed (--timeout)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// A referrers listing that trickles for ever (the SBOM lookup after the
// image is fetched) is given up on after the stall deadline, named, and the
// pull leaves nothing.
func TestHostileReferrersTrickle(t *testing.T) {
	r := registrytest.NewLayout(t)
	dir := t.TempDir()
	md := layouttest.Must(layouttest.Image(dir, "linux", "amd64", []byte("layer")))
	md.Platform = nil
	r.Load(t, dir, map[string]ocispec.Descriptor{"v1": md})
	r.TrickleReferrers()
	ref, err := ParseRef(r.Host + "/hostile:v1")
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	start := time.Now()
	_, err = Pull(context.Background(), ref, filepath.Join(parent, "out"), Options{PlainHTTP: true, Cache: "-", PullSBOM: true, Stall: 300 * time.Millisecond})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "referrers listing") || !strings.Contains(err.Error(), "--stall-timeout") {
		t.Errorf("pull with a trickling referrers listing: %v", err)
	}
	// The bound tells a deadline from none (the listing never ends), with
	// room for a loaded machine.
	if n := r.Count("GET referrers"); n != 1 || took > 20*time.Second { // a deadline that fired is not retried
		t.Errorf("%d listings in %s", n, took)
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Errorf("pull left %s behind", left[0].Name())
	}
}
