package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testRegistry is Debian's docker-registry (distribution 2.8) serving on
// 127.0.0.1 from a temporary directory; its access log (one line per request,
// on stdout) is how tests count what a client really sent.
type testRegistry struct {
	t       *testing.T
	dir     string
	addr    string // 127.0.0.1:PORT
	cmd     *exec.Cmd
	logPath string
	tls     bool
	caFile  string // the test CA, when tls
	user    string // htpasswd or token-server user, when auth or token
	pass    string
	tokens  *tokenServer
}

type registryOpts struct {
	tls   bool // serve HTTPS with a certificate made by openssl
	auth  bool // htpasswd basic auth (user "tester")
	token bool // bearer tokens from a token server the test runs (user "tester")
}

// requireTools fails (with OCITOOLS_E2E=1) when a tool is missing.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	requireE2E(t)
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (scripts/lib.sh installs it): %v", tool, err)
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startRegistry starts a registry and stops and removes it when the test ends.
func startRegistry(t *testing.T, o registryOpts) *testRegistry {
	t.Helper()
	requireTools(t, "docker-registry")
	r := &testRegistry{t: t, dir: t.TempDir(), addr: freePort(t), tls: o.tls}
	r.logPath = filepath.Join(r.dir, "access.log")
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(r.dir, "data"), r.addr)
	if o.tls {
		requireTools(t, "openssl")
		key, cert := filepath.Join(r.dir, "key.pem"), filepath.Join(r.dir, "cert.pem")
		out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
			"-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=ocitools test registry",
			"-addext", "subjectAltName=IP:127.0.0.1").CombinedOutput()
		if err != nil {
			t.Fatalf("openssl: %v\n%s", err, out)
		}
		r.caFile = cert
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cert, key)
	}
	if o.auth {
		requireTools(t, "htpasswd")
		r.user, r.pass = "tester", "s3cret-pass"
		out, err := exec.Command("htpasswd", "-Bbn", r.user, r.pass).Output()
		if err != nil {
			t.Fatalf("htpasswd: %v", err)
		}
		pw := filepath.Join(r.dir, "htpasswd")
		if err := os.WriteFile(pw, out, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: ocitools-test\n    path: %s\n", pw)
	}
	if o.token {
		r.user, r.pass = "tester", "t0ken-pass"
		r.tokens = startTokenServer(t, r.dir, r.user, r.pass)
		cfg += fmt.Sprintf("auth:\n  token:\n    realm: %s/token\n    service: ocitools-test\n    issuer: ocitools-test-issuer\n    rootcertbundle: %s\n",
			r.tokens.url, r.tokens.certFile)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

// start (re)starts the process on the same address and storage; the log is
// appended to.
func (r *testRegistry) start() {
	t := r.t
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	errf, err := os.OpenFile(filepath.Join(r.dir, "registry.err"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	r.cmd = exec.Command("docker-registry", "serve", filepath.Join(r.dir, "config.yml"))
	r.cmd.Stdout, r.cmd.Stderr = logf, errf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	client := r.httpClient()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(r.url() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 || resp.StatusCode == 401 {
				return
			}
		}
		if time.Now().After(deadline) {
			errs, _ := os.ReadFile(filepath.Join(r.dir, "registry.err"))
			r.stop()
			t.Fatalf("docker-registry did not answer on %s within 20s: %v\n%s", r.addr, err, errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop kills the process (a registry going away, not a clean shutdown).
func (r *testRegistry) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

func (r *testRegistry) url() string {
	if r.tls {
		return "https://" + r.addr
	}
	return "http://" + r.addr
}

func (r *testRegistry) httpClient() *http.Client {
	tr := &http.Transport{}
	if r.tls {
		pool := x509.NewCertPool()
		pem, err := os.ReadFile(r.caFile)
		if err != nil {
			r.t.Fatal(err)
		}
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// logLines returns the access log lines from line `from` on.
func (r *testRegistry) logLines(from int) []string {
	data, err := os.ReadFile(r.logPath)
	if err != nil {
		r.t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "\" ") && strings.Contains(l, "HTTP/") {
			lines = append(lines, l)
		}
	}
	if from > len(lines) {
		return nil
	}
	return lines[from:]
}

// mark is the number of access lines so far: counts after it are one step's.
func (r *testRegistry) mark() int { return len(r.logLines(0)) }

// traffic is what the access log says a client did to one repository.
type traffic struct {
	blobsSent    []string // digests of blob uploads completed (PUT .../blobs/uploads/...?digest= answered 201)
	mounts       int      // POST ...?mount=... answered 201
	manifestPuts int      // PUT .../manifests/... answered 201
	requests     int
}

var (
	accessRe  = regexp.MustCompile(`"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d+) `)
	digestArg = regexp.MustCompile(`digest=sha256(?:%3A|:)([0-9a-f]{64})`)
)

func (r *testRegistry) traffic(from int, repo string) traffic {
	var tr traffic
	prefix := "/v2/" + repo + "/"
	for _, l := range r.logLines(from) {
		m := accessRe.FindStringSubmatch(l)
		if m == nil || !strings.HasPrefix(m[2], prefix) {
			continue
		}
		tr.requests++
		method, path, status := m[1], strings.TrimPrefix(m[2], prefix), m[3]
		switch {
		case method == "PUT" && strings.HasPrefix(path, "blobs/uploads/") && status == "201":
			if d := digestArg.FindStringSubmatch(path); d != nil {
				tr.blobsSent = append(tr.blobsSent, "sha256:"+d[1])
			} else {
				tr.blobsSent = append(tr.blobsSent, "?")
			}
		case method == "POST" && strings.Contains(path, "mount=") && status == "201":
			tr.mounts++
		case method == "PUT" && strings.HasPrefix(path, "manifests/") && status == "201":
			tr.manifestPuts++
		}
	}
	sort.Strings(tr.blobsSent)
	return tr
}

// ---- test images, made here with image-spec's JSON shapes ----

type tarEntry struct {
	name string
	mode int64
	data []byte // file content
	link string // symlink target
	dir  bool
}

// blobWriter collects a layout's blobs.
type layoutWriter struct {
	t   *testing.T
	dir string
}

func newLayout(t *testing.T, dir string) *layoutWriter {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return &layoutWriter{t: t, dir: dir}
}

type desc struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    map[string]string `json:"platform,omitempty"`
}

func (w *layoutWriter) blob(mediaType string, data []byte) desc {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(w.dir, "blobs", "sha256", h), data, 0o644); err != nil {
		w.t.Fatal(err)
	}
	return desc{MediaType: mediaType, Digest: "sha256:" + h, Size: int64(len(data))}
}

// layer writes a gzip tar layer of entries (deterministic: fixed times).
func (w *layoutWriter) layer(entries []tarEntry) desc {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: time.Unix(1, 0), Format: tar.FormatPAX}
		switch {
		case e.dir:
			h.Typeflag = tar.TypeDir
		case e.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			w.t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		w.t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		w.t.Fatal(err)
	}
	return w.blob("application/vnd.oci.image.layer.v1.tar+gzip", buf.Bytes())
}

// rawLayer writes an uncompressed layer of one file of n pseudo-random bytes
// (incompressible, so that its transfer takes measurable time).
func (w *layoutWriter) rawLayer(name string, n int, seed byte) desc {
	data := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range data {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		data[i] = byte(x)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(n), ModTime: time.Unix(1, 0), Typeflag: tar.TypeReg}); err != nil {
		w.t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		w.t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		w.t.Fatal(err)
	}
	return w.blob("application/vnd.oci.image.layer.v1.tar", buf.Bytes())
}

func (w *layoutWriter) json(mediaType string, v any) desc {
	data, err := json.Marshal(v)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.blob(mediaType, data)
}

// image writes config and manifest and makes the manifest the layout's only
// entry, named tag.
func (w *layoutWriter) image(arch string, cmd []string, layers []desc, tag string) desc {
	var diffIDs []string
	for _, l := range layers {
		diffIDs = append(diffIDs, diffID(w.t, filepath.Join(w.dir, "blobs", "sha256", strings.TrimPrefix(l.Digest, "sha256:")), l.MediaType))
	}
	cfg := w.json("application/vnd.oci.image.config.v1+json", map[string]any{
		"architecture": arch, "os": "linux",
		"config": map[string]any{"Cmd": cmd, "Env": []string{"PATH=/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	m := w.json("application/vnd.oci.image.manifest.v1+json", map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": cfg, "layers": layers,
	})
	m.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
	idx := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []desc{m}}
	data, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(w.dir, "index.json"), data, 0o644); err != nil {
		w.t.Fatal(err)
	}
	return m
}

func diffID(t *testing.T, path, mediaType string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(mediaType, "+gzip") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

var (
	busyboxLayerOnce sync.Once
	busyboxEntries   []tarEntry
)

// baseEntries: busybox-static as /bin/busybox with sh, cat and echo links.
func baseEntries(t *testing.T) []tarEntry {
	busyboxLayerOnce.Do(func() {
		data, err := os.ReadFile(filepath.Join(busyboxDir, "bin", "busybox"))
		if err != nil {
			t.Fatal(err)
		}
		busyboxEntries = []tarEntry{
			{name: "bin/", mode: 0o755, dir: true},
			{name: "bin/busybox", mode: 0o755, data: data},
			{name: "bin/sh", mode: 0o777, link: "busybox"},
			{name: "bin/cat", mode: 0o777, link: "busybox"},
			{name: "bin/echo", mode: 0o777, link: "busybox"},
			{name: "tmp/", mode: 0o1777, dir: true},
		}
	})
	return busyboxEntries
}

// testImage writes at dir a runnable image: a busybox base layer and an app
// layer whose /app/hello says msg; the command prints it.
func testImage(t *testing.T, dir, arch, msg, tag string) desc {
	t.Helper()
	w := newLayout(t, dir)
	base := w.layer(baseEntries(t))
	app := w.layer([]tarEntry{{name: "app/", mode: 0o755, dir: true}, {name: "app/hello", mode: 0o644, data: []byte(msg + "\n")}})
	return w.image(arch, []string{"/bin/cat", "/app/hello"}, []desc{base, app}, tag)
}

// layoutBlobs lists the digests under DIR/blobs/sha256 (links resolved).
func layoutBlobs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != e.Name() {
			t.Errorf("%s: blob %s has digest %x", dir, e.Name(), sum)
		}
		out = append(out, "sha256:"+e.Name())
	}
	sort.Strings(out)
	return out
}

// ocitoolsCmd runs ocitools with an isolated HOME and cache (no auth files
// of the machine, a blob-location record per test).
func ocitoolsCmd(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(ocitoolsBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// isolatedEnv gives a test its own HOME and XDG dirs.
func isolatedEnv(t *testing.T) []string {
	home := t.TempDir()
	return []string{"HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_RUNTIME_DIR=" + filepath.Join(home, "run"), "REGISTRY_AUTH_FILE=", "DOCKER_CONFIG="}
}

// tokenServer issues registry bearer tokens (distribution's token auth: a JWT
// signed with RS256, its certificate in the x5c header and in the registry's
// rootcertbundle) to a client that gives the right basic credentials.
type tokenServer struct {
	url      string
	certFile string
	issued   atomic.Int32
	refused  atomic.Int32
}

func startTokenServer(t *testing.T, dir, user, pass string) *tokenServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ocitools test token issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{certFile: filepath.Join(dir, "token-cert.pem")}
	if err := os.WriteFile(ts.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	b64 := func(v []byte) string { return base64.RawURLEncoding.EncodeToString(v) }
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.url = "http://" + l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if !ok || u != user || p != pass {
			ts.refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"token server: wrong user name or password"}]}`)
			return
		}
		type access struct {
			Type    string   `json:"type"`
			Name    string   `json:"name"`
			Actions []string `json:"actions"`
		}
		var grants []access
		for _, scope := range req.URL.Query()["scope"] {
			for _, one := range strings.Split(scope, " ") {
				parts := strings.Split(one, ":")
				if len(parts) == 3 {
					grants = append(grants, access{parts[0], parts[1], strings.Split(parts[2], ",")})
				}
			}
		}
		now := time.Now().Unix()
		header, _ := json.Marshal(map[string]any{"typ": "JWT", "alg": "RS256", "x5c": []string{base64.StdEncoding.EncodeToString(der)}})
		claims, _ := json.Marshal(map[string]any{"iss": "ocitools-test-issuer", "sub": user, "aud": req.URL.Query().Get("service"),
			"exp": now + 300, "nbf": now - 10, "iat": now, "jti": fmt.Sprint(ts.issued.Add(1)), "access": grants})
		signed := b64(header) + "." + b64(claims)
		sum := sha256.Sum256([]byte(signed))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		tok := signed + "." + b64(sig)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300})
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return ts
}
