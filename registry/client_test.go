package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

func TestTransient(t *testing.T) {
	status := func(code int) error { return &errcode.ErrorResponse{Method: "PUT", StatusCode: code} }
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{status(500), true}, {status(502), true}, {status(503), true}, {status(429), true}, {status(408), true},
		{status(400), false}, {status(401), false}, {status(403), false}, {status(404), false},
		{fmt.Errorf("put: %w", syscall.ECONNRESET), true},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{io.ErrUnexpectedEOF, true},
		// A deadline that fired is final: retrying would multiply the wait.
		{errStalled, false},
		{&DeadlineError{What: "response headers", After: time.Minute, Err: errors.New("x")}, false},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{errors.New("blob sha256:x is damaged"), false},
		{errors.New(`Post "http://x": http: server closed idle connection`), true},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v", tc.err, got)
		}
	}
}

func TestWithRetry(t *testing.T) {
	n := 0
	err := withRetry(context.Background(), 3, func() error { n++; return &errcode.ErrorResponse{StatusCode: 503} })
	if n != 3 || err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Errorf("always 503: %d calls, %v", n, err)
	}
	n = 0
	err = withRetry(context.Background(), 3, func() error {
		n++
		if n == 1 {
			return &errcode.ErrorResponse{StatusCode: http.StatusInternalServerError}
		}
		return nil
	})
	if n != 2 || err != nil {
		t.Errorf("500 then success: %d calls, %v", n, err)
	}
	n = 0
	err = withRetry(context.Background(), 3, func() error { n++; return &errcode.ErrorResponse{StatusCode: 401} })
	if n != 1 || err == nil {
		t.Errorf("401: %d calls, %v", n, err)
	}
	// The wait between attempts ends with the context.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = withRetry(ctx, 10, func() error { return syscall.ECONNRESET })
	if time.Since(start) > 2*time.Second {
		t.Errorf("withRetry ignored the context: %s", time.Since(start))
	}
}

func TestReadManifest(t *testing.T) {
	body := []byte(`{"schemaVersion":2}`)
	d := ocispec.Descriptor{Digest: digest.FromBytes(body), Size: int64(len(body))}
	if got, err := readManifest(strings.NewReader(string(body)), d); err != nil || string(got) != string(body) {
		t.Errorf("good manifest: %v", err)
	}
	for name, tc := range map[string]struct {
		r    io.Reader
		desc ocispec.Descriptor
		want string
	}{
		"too large":      {strings.NewReader(""), ocispec.Descriptor{Digest: d.Digest, Size: MaxManifestSize + 1}, "more than"},
		"longer":         {strings.NewReader(string(body) + "xx"), d, "more or fewer"},
		"shorter":        {strings.NewReader(string(body[:5])), d, "more or fewer"},
		"other content":  {strings.NewReader(strings.ToUpper(string(body))), d, "digest"},
		"endless stream": {neverEnding{}, d, "more or fewer"},
	} {
		if _, err := readManifest(tc.r, tc.desc); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

type neverEnding struct{}

func (neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '{'
	}
	return len(p), nil
}

// Plain HTTP is used when asked, or as a fallback for a registry on this
// machine; an HTTP answer from another address is refused with what to do.
func TestPlainHTTPDecision(t *testing.T) {
	ip := nonLoopbackIP(t)
	for _, host := range []string{"127.0.0.1", ip} {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
		})}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
		ref := Ref{Registry: l.Addr().String(), Repository: "x"}
		ctx := context.Background()
		repo, err := (&Options{Cache: "-"}).Repository(ctx, ref)
		if host == "127.0.0.1" {
			if err != nil || !repo.PlainHTTP {
				t.Errorf("%s: no fallback to plain HTTP: %v", ref.Registry, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "--plain-http") {
			t.Errorf("%s: plain HTTP accepted without --plain-http: %v", ref.Registry, err)
		}
		if repo, err := (&Options{PlainHTTP: true}).Repository(ctx, ref); err != nil || !repo.PlainHTTP {
			t.Errorf("%s with --plain-http: %v", ref.Registry, err)
		}
	}
}

func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address to test the refusal of plain HTTP")
	return ""
}
