package registrytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layout is a registry serving the blobs of crafted image layouts (hostile
// graphs: fan-outs, duplicates, deep nesting), counting requests by method
// and kind ("GET manifests", "HEAD manifests", "PUT manifests", "GET
// blobs", "GET referrers"...). It can lie: send other bytes for a digest,
// without a length the client could check first, or send blob uploads to
// another host. Manifest PUTs are accepted and forgotten.
type Layout struct {
	*httptest.Server
	// Host is HOST:PORT, for references (Host + "/REPO:TAG").
	Host string

	mu       sync.Mutex
	content  map[digest.Digest][]byte
	types    map[digest.Digest]string // media types of manifests and indexes
	tags     map[string]digest.Digest
	lies     map[digest.Digest][]byte
	location string
	requests map[string]int
	trickle  bool // referrers listings never end
}

// NewLayout starts an empty registry; it stops at the end of the test.
func NewLayout(t testing.TB) *Layout {
	r := &Layout{content: map[digest.Digest][]byte{}, types: map[digest.Digest]string{},
		tags: map[string]digest.Digest{}, lies: map[digest.Digest][]byte{}, requests: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	r.Host = strings.TrimPrefix(r.URL, "http://")
	t.Cleanup(r.Close)
	return r
}

// Load serves every blob of the layout dir, in any repository; tags name
// descriptors among them.
func (r *Layout) Load(t testing.TB, dir string, tags map[string]ocispec.Descriptor) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		r.content[d] = data
		var probe struct {
			MediaType string `json:"mediaType"`
		}
		if json.Unmarshal(data, &probe) == nil && probe.MediaType != "" {
			r.types[d] = probe.MediaType
		}
	}
	for tag, d := range tags {
		r.tags[tag] = d.Digest
	}
}

// Lie sends data for d from now on.
func (r *Layout) Lie(d digest.Digest, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lies[d] = data
}

// Forget stops serving d.
func (r *Layout) Forget(d digest.Digest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.content, d)
}

// UploadLocation is where blob uploads are sent (the Location of the
// answer to their POST).
func (r *Layout) UploadLocation(loc string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.location = loc
}

// Count is the number of requests of one method and kind ("GET blobs").
func (r *Layout) Count(what string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[what]
}

// TrickleReferrers makes every referrers listing from now on send its
// headers, then a space every 50 ms until the client goes away.
func (r *Layout) TrickleReferrers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trickle = true
}

func (r *Layout) serve(w http.ResponseWriter, req *http.Request) {
	if strings.Contains(req.URL.Path, "/referrers/") {
		r.referrers(w, req)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := req.URL.Path
	if p == "/v2/" || p == "/v2" {
		return
	}
	if req.Method == http.MethodPost && strings.HasSuffix(p, "/blobs/uploads/") {
		w.Header().Set("Location", r.location)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	kind := "blobs"
	if strings.Contains(p, "/manifests/") {
		kind = "manifests"
	}
	r.requests[req.Method+" "+kind]++
	if req.Method == http.MethodPut && kind == "manifests" {
		w.WriteHeader(http.StatusCreated)
		return
	}
	ref := p[strings.LastIndexByte(p, '/')+1:]
	d, ok := r.tags[ref]
	if !ok {
		d = digest.Digest(ref)
	}
	data, ok := r.content[d]
	if !ok {
		http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}`, http.StatusNotFound)
		return
	}
	if kind == "manifests" {
		w.Header().Set("Content-Type", r.types[d])
	}
	w.Header().Set("Docker-Content-Digest", d.String())
	lie, lying := r.lies[d]
	if !lying {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	}
	if req.Method != http.MethodGet {
		return
	}
	if lying {
		w.(http.Flusher).Flush() // the headers go out without a length
		data = lie
	}
	_, _ = w.Write(data)
}

// referrers answers a referrers listing: not found (no referrers API, as
// docker-registry 2.8), or a body that never ends.
func (r *Layout) referrers(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests[req.Method+" referrers"]++
	trickle := r.trickle
	r.mu.Unlock()
	if !trickle {
		http.NotFound(w, req) // what docker-registry 2.8 answers
		return
	}
	w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	w.WriteHeader(http.StatusOK)
	for {
		if _, err := w.Write([]byte(" ")); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-req.Context().Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
