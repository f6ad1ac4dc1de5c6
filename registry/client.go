package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"oras.land/oras-go/v2/registry/remote"

	"github.com/ocitools/ocitools/unpack"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/ocitools/ocitools/internal/escape"
	"github.com/ocitools/ocitools/internal/readfile"
)

// Options are what push and pull share.
type Options struct {
	Creds     string // USER:PASS, overrides the auth files
	AuthFile  string // one auth file instead of the usual search (tests, --authfile)
	CAFile    string // PEM bundle added to the system roots
	PlainHTTP bool   // plain HTTP for any registry
	// Jobs bounds the blobs sent or fetched at once (default 4).
	Jobs int
	// Progress receives events; nil means none.
	Progress Progress
	// Cache is the blob location record for mounts ("" = the default file,
	// "-" = none).
	Cache string
	// Stall is how long a transfer may make no progress before it is
	// abandoned (default 2 minutes).
	Stall time.Duration
	// Headers is how long a request may wait for the answer's headers
	// (default 2 minutes).
	Headers time.Duration
	// Attempts bounds the requests made for one operation on transient
	// failures (default 4): the only retry layer, so that the count the
	// error states is the count made.
	Attempts int
	// Platform, when set, makes a pull of an index fetch only the image for
	// that platform (and a pull of one image check that it is for it).
	Platform *unpack.Platform
	// PullSBOM makes a pull of an image fetch the SBOM attached to it (a
	// CycloneDX referrer) into DIR/sbom.cdx.json: ocitools pull sets it;
	// unpack and run need no SBOM, and pullImage's fixed output must not
	// depend on what was attached later.
	PullSBOM bool
}

func (o *Options) jobs() int {
	if o.Jobs <= 0 {
		return 4
	}
	return o.Jobs
}

func (o *Options) stall() time.Duration {
	if o.Stall <= 0 {
		return defaultStall
	}
	return o.Stall
}

func (o *Options) headers() time.Duration {
	if o.Headers <= 0 {
		return defaultHeaders
	}
	return o.Headers
}

func (o *Options) attempts() int {
	if o.Attempts <= 0 {
		return defaultAttempts
	}
	return o.Attempts
}

// transport is the HTTP transport: system roots plus --ca, and a deadline on
// every phase that has no body to stream (connect, TLS, response headers).
func (o *Options) transport() (*http.Transport, error) {
	// nil: crypto/tls loads the system roots when a certificate is first
	// verified (a plain-HTTP push never parses them).
	var roots *x509.CertPool
	if o.CAFile != "" {
		var err error
		if roots, err = x509.SystemCertPool(); err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		pem, err := readfile.Following(o.CAFile, readfile.CALimit)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate in it", o.CAFile)
		}
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: defaultConnect, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   defaultConnect,
		ResponseHeaderTimeout: o.headers(),
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}, nil
}

// namingTransport names the deadline that ended a request (connect, TLS,
// headers, or the context's: the command's or a manifest's).
type namingTransport struct {
	base http.RoundTripper
	o    *Options
}

func (t namingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		err = t.o.nameDeadline(req.Context(), err)
	}
	return resp, err
}

// Repository opens a remote repository: credentials, TLS, and the
// plain-HTTP decision (asked for, or a localhost registry that answers HTTP
// to an HTTPS request). There is no retrying transport (oras-go's would
// multiply withRetry's attempts): every operation is retried whole by
// withRetry, uploads included, which a transport could not rewind.
func (o *Options) Repository(ctx context.Context, ref Ref) (*remote.Repository, error) {
	tr, err := o.transport()
	if err != nil {
		return nil, err
	}
	creds, err := o.credentials(ref.Registry)
	if err != nil {
		return nil, err
	}
	client := &auth.Client{
		Client:     &http.Client{Transport: namingTransport{base: tr, o: o}},
		Cache:      auth.NewCache(),
		Credential: creds,
		Header:     http.Header{"User-Agent": {"ocitools"}},
	}
	repo, err := remote.NewRepository(ref.Registry + "/" + ref.Repository)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	repo.Client = client
	repo.PlainHTTP = o.PlainHTTP
	repo.MaxMetadataBytes = MaxManifestSize
	// Image pushes use no referrers; skip oras-go's probing of them on
	// manifest pushes (the SBOM referrer gets its own, referrersRepository).
	_ = repo.SetReferrersCapability(false)
	if err := withRetry(ctx, o.attempts(), func() error { return ping(ctx, repo, ref) }); err != nil {
		return nil, explain(ref, err)
	}
	return repo, nil
}

// ping checks that the registry answers (and, as a side effect, that the
// credentials work) before anything is sent, and switches a localhost
// registry that speaks plain HTTP to it.
func ping(ctx context.Context, repo *remote.Repository, ref Ref) error {
	reg, err := remote.NewRegistry(ref.Registry)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	reg.Client = repo.Client
	reg.PlainHTTP = repo.PlainHTTP
	ctx, cancel := withTimeout(ctx, time.Minute, "ping", "")
	defer cancel()
	err = reg.Ping(ctx)
	if err != nil && !repo.PlainHTTP && isLocalhost(ref.Registry) &&
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		repo.PlainHTTP = true
		reg.PlainHTTP = true
		err = reg.Ping(ctx)
	}
	return err
}

// explain adds what a user needs to the common failures. What the registry
// said (its error body, the URL) is escaped: it must not reach a terminal
// as control sequences.
func explain(ref Ref, err error) error {
	if err == nil {
		return nil
	}
	err = escape.Error(err)
	var resp *errcode.ErrorResponse
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	if errors.As(err, &resp) && resp.URL != nil && resp.URL.RawQuery != "" {
		// Upload URLs carry long opaque state: the path says enough.
		u := *resp.URL
		u.RawQuery = ""
		resp.URL = &u
	}
	switch {
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return fmt.Errorf("registry %s asks for credentials and none were found: give --creds USER:PASSWORD, or log in with podman/docker (REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json, ~/.docker/config.json): %w", ref.Registry, err)
	case errors.As(err, &resp) && resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("registry %s refused the credentials (401 unauthorized): check --creds, $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json or ~/.docker/config.json: %w", ref.Registry, err)
	case errors.As(err, &resp) && resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("registry %s: access to %s denied (403): %w", ref.Registry, ref.Repository, err)
	case errors.As(err, &uerr):
		return fmt.Errorf("registry %s: its TLS certificate is signed by an unknown authority: pass the CA with --ca FILE (or add it to the system roots): %w", ref.Registry, err)
	case errors.As(err, &herr):
		return fmt.Errorf("registry %s: its TLS certificate does not name this host: %w", ref.Registry, err)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("registry %s speaks plain HTTP: use --plain-http if that is intended (it is only tried by itself for localhost): %w", ref.Registry, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("registry %s is not reachable (connection refused): %w", ref.Registry, err)
	}
	return fmt.Errorf("registry %s: %w", escape.Line(ref.Registry), err)
}

// transient says whether an operation may succeed if tried again. A
// deadline that fired is not: the wait was already as long as documented.
func transient(err error) bool {
	var de *DeadlineError
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &de) {
		return false
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		s := resp.StatusCode
		return s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return true
	}
	// net/http's error for a connection the server closed under it.
	if strings.Contains(err.Error(), "server closed idle connection") {
		return true
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

var errStalled = errors.New("transfer stalled")

// withRetry runs op until it succeeds, fails for good, or attempts run out,
// waiting 0.5 s, 1 s, 2 s... between tries. It is the client's only retry
// layer: attempts is the number of times op runs. An error after ctx ended
// names the deadline that ended it (the command's --timeout).
func withRetry(ctx context.Context, attempts int, op func() error) error {
	wait := 500 * time.Millisecond
	var err error
	for i := 0; i < attempts; i++ {
		if err = op(); err == nil {
			return nil
		}
		var de *DeadlineError
		if ctx.Err() != nil && !errors.As(err, &de) && errors.As(context.Cause(ctx), &de) {
			return &DeadlineError{What: de.What, After: de.After, Flag: de.Flag, Err: err}
		}
		if !transient(err) {
			return err
		}
		if i == attempts-1 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if cause := context.Cause(ctx); errors.As(cause, &de) {
				return &DeadlineError{What: de.What, After: de.After, Flag: de.Flag, Err: err}
			}
			return err
		case <-t.C:
		}
		wait *= 2
	}
	return fmt.Errorf("%w (gave up after %d attempts)", err, attempts)
}

// stallReader cancels its context when no byte moves for d, so that a
// transfer that hangs mid-body has a deadline too.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
	n     func(int)
}

func newStallReader(r io.Reader, d time.Duration, cancel context.CancelCauseFunc, progress func(int)) *stallReader {
	return &stallReader{r: r, d: d, n: progress, timer: time.AfterFunc(d, func() { cancel(errStalled) })}
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(s.d)
		if s.n != nil {
			s.n(n)
		}
	}
	return n, err
}

func (s *stallReader) stop() { s.timer.Stop() }

// fileExists is a small helper for the credential search.
func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// errWriter receives warnings (a variable so that tests can capture them).
var errWriter io.Writer = os.Stderr
