// Package registrytest serves small hostile registries on 127.0.0.1 for
// tests, with the requests counted, so that tests can check what a client
// does and how many requests it makes: Server, one image (a config and one
// layer) whose layer blob is answered badly (trickled, never answered,
// refused with a chosen body); Layout (layout.go), crafted image layouts
// whose graphs are hostile, with lies about sizes and upload locations.
package registrytest

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Mode is how the layer blob is answered.
type Mode int

const (
	// Trickle sends the headers, then one byte every 50 ms: no stall
	// deadline fires, and the transfer would take hours.
	Trickle Mode = iota
	// NoHeaders never answers (until the client goes away).
	NoHeaders
	// Status answers Server.Status with Server.Body.
	Status
)

// Server is the hostile registry.
type Server struct {
	*httptest.Server
	// Host is HOST:PORT, for references (Host + "/REPO:TAG").
	Host   string
	Config ocispec.Descriptor
	Layer  ocispec.Descriptor
	Status int
	Body   string

	mode     Mode
	manifest []byte
	config   []byte
	mu       sync.Mutex
	counts   map[string]int
	done     chan struct{}
}

// LayerSize is the declared size of the layer blob.
const LayerSize = 1 << 20

// New starts a registry answering the layer blob in mode; it stops at the
// end of the test.
func New(t testing.TB, mode Mode) *Server {
	s := &Server{mode: mode, counts: map[string]int{}, done: make(chan struct{})}
	s.config = []byte(`{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/true"]},"rootfs":{"type":"layers","diff_ids":["sha256:` + strings.Repeat("0", 64) + `"]}}`)
	s.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(s.config), Size: int64(len(s.config))}
	// The layer's content is never sent whole: any digest will do.
	s.Layer = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.NewDigestFromEncoded(digest.SHA256, fmt.Sprintf("%x", sha256.Sum256([]byte("layer")))), Size: LayerSize}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: s.Config, Layers: []ocispec.Descriptor{s.Layer}}
	s.manifest, _ = json.Marshal(m)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	s.Host = strings.TrimPrefix(s.URL, "http://")
	t.Cleanup(func() {
		close(s.done)
		s.Close()
	})
	return s
}

// Count is the number of requests of kind "manifest", "config", "layer" or
// "upload" (a push's POST, PUT and PATCH; their bodies are read one byte
// every 50 ms).
func (s *Server) Count(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[kind]
}

func (s *Server) count(kind string) {
	s.mu.Lock()
	s.counts[kind]++
	s.mu.Unlock()
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/v2/":
		w.WriteHeader(http.StatusOK)
	case strings.Contains(p, "/blobs/uploads/"):
		s.count("upload")
		s.upload(w, r)
	case r.Method == http.MethodHead && strings.Contains(p, "/blobs/"):
		http.NotFound(w, r) // a push sends every blob
	case strings.Contains(p, "/manifests/"):
		s.count("manifest")
		w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(s.manifest).String())
		w.Header().Set("Content-Length", fmt.Sprint(len(s.manifest)))
		if r.Method != http.MethodHead {
			_, _ = w.Write(s.manifest)
		}
	case strings.HasSuffix(p, "/blobs/"+s.Config.Digest.String()):
		s.count("config")
		w.Header().Set("Content-Length", fmt.Sprint(len(s.config)))
		_, _ = w.Write(s.config)
	case strings.HasSuffix(p, "/blobs/"+s.Layer.Digest.String()):
		s.count("layer")
		s.layer(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) layer(w http.ResponseWriter, r *http.Request) {
	switch s.mode {
	case NoHeaders:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
	case Status:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.Status)
		_, _ = w.Write([]byte(s.Body))
	case Trickle:
		w.Header().Set("Content-Length", fmt.Sprint(LayerSize))
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < LayerSize; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-s.done:
				return
			case <-tick.C:
			}
			if _, err := w.Write([]byte{0}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
}

// upload starts an upload (POST), then reads what is sent one byte every
// 50 ms and never answers (PUT, PATCH).
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/session")
		w.WriteHeader(http.StatusAccepted)
		return
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	b := make([]byte, 1)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-tick.C:
		}
		if _, err := r.Body.Read(b); err != nil {
			return
		}
	}
}
