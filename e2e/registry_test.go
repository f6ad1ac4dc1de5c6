package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func push(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, err := ocitoolsCmd(t, env, append([]string{"push", "--quiet"}, args...)...)
	if err != nil {
		t.Fatalf("ocitools push %v: %v\n%s", args, err, out)
	}
	return out
}

func pushFails(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, err := ocitoolsCmd(t, env, append([]string{"push", "--quiet"}, args...)...)
	if err == nil {
		t.Fatalf("ocitools push %v succeeded, want a failure\n%s", args, out)
	}
	t.Logf("push failed as expected:\n%s", out)
	return out
}

func wantSent(t *testing.T, what string, tr traffic, blobs []string, mounts, manifests int) {
	t.Helper()
	if blobs == nil {
		blobs = []string{}
	}
	got := tr.blobsSent
	if got == nil {
		got = []string{}
	}
	if !reflect.DeepEqual(got, blobs) || tr.mounts != mounts || tr.manifestPuts != manifests {
		t.Errorf("%s: the registry received blobs %v, %d mounts, %d manifest PUTs; want blobs %v, %d mounts, %d manifest PUTs",
			what, got, tr.mounts, tr.manifestPuts, blobs, mounts, manifests)
	}
}

func digests(ds ...desc) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Digest)
	}
	return sortStrings(out)
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// manifestOf reads the layout's manifest (index.json's only entry).
func manifestOf(t *testing.T, dir string) (config desc, layers []desc) {
	t.Helper()
	var idx struct{ Manifests []desc }
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("%s/index.json: %v %s", dir, err, data)
	}
	data, err = os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Config desc
		Layers []desc
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m.Config, m.Layers
}

// podmanPullRun pulls ref with podman (own storage) and runs it with runc.
func podmanPullRun(t *testing.T, ref string, extra ...string) string {
	t.Helper()
	requireTools(t, "podman", "runc")
	root := t.TempDir()
	base := []string{"--root", filepath.Join(root, "storage"), "--runroot", filepath.Join(root, "run"),
		"--storage-driver", "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "none"}
	t.Cleanup(func() {
		_ = exec.Command("podman", append(base, "system", "reset", "--force")...).Run()
	})
	pull := exec.Command("podman", append(append(base, "pull", "--tls-verify=false"), append(extra, ref)...)...)
	if out, err := pull.CombinedOutput(); err != nil {
		t.Fatalf("podman pull %s: %v\n%s", ref, err, out)
	}
	run := exec.Command("podman", append(base, "run", "--rm", "--network", "none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", ref)...)
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("podman run %s: %v\n%s", ref, err, out)
	}
	return string(out)
}

// TestRegistryPushPull: push, pull back, skopeo and podman read it; a second
// push sends nothing; another repository gets mounts; a sibling image sends
// only its own layer and config. Counted from the registry's access log.
func TestRegistryPushPull(t *testing.T) {
	requireTools(t, "skopeo", "podman")
	r := startRegistry(t, registryOpts{})
	env := isolatedEnv(t)
	img := filepath.Join(t.TempDir(), "img")
	root := testImage(t, img, "amd64", "hello from the registry", "1.0")
	cfg, layers := manifestOf(t, img)
	all := digests(append(layers, cfg)...)

	ref := r.addr + "/demo/app:1.0"
	m := r.mark()
	out := push(t, env, img, ref)
	wantSent(t, "first push", r.traffic(m, "demo/app"), all, 0, 1)
	if !strings.Contains(out, "3 blobs sent") || !strings.Contains(out, root.Digest) {
		t.Errorf("summary: %s", out)
	}

	// Pulled back, every digest is the same.
	pulled := filepath.Join(t.TempDir(), "pulled")
	if out, err := ocitoolsCmd(t, env, "pull", "--quiet", ref, pulled); err != nil {
		t.Fatalf("pull: %v\n%s", err, out)
	}
	if got, want := layoutBlobs(t, pulled), sortStrings(append(all, root.Digest)); !reflect.DeepEqual(got, want) {
		t.Errorf("pulled blobs %v, pushed %v", got, want)
	}
	var idx struct{ Manifests []desc }
	data, _ := os.ReadFile(filepath.Join(pulled, "index.json"))
	if err := json.Unmarshal(data, &idx); err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != root.Digest ||
		idx.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "1.0" {
		t.Errorf("pulled index.json: %s", data)
	}
	// Pulling over an existing layout is refused and leaves it alone.
	if out, err := ocitoolsCmd(t, env, "pull", "--quiet", ref, pulled); err == nil || !strings.Contains(out, "not empty") {
		t.Errorf("pull into a non-empty dir: %v\n%s", err, out)
	}

	// skopeo reads it.
	insp, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "docker://"+ref).CombinedOutput()
	if err != nil || !strings.Contains(string(insp), root.Digest) || !strings.Contains(string(insp), `"Architecture": "amd64"`) {
		t.Errorf("skopeo inspect: %v\n%s", err, insp)
	}
	// podman pulls and runs it with runc.
	if out := podmanPullRun(t, ref); !strings.Contains(out, "hello from the registry") {
		t.Errorf("podman run printed %q", out)
	}

	// The same push again: no blob, no manifest PUT (the tag is not rewritten).
	m = r.mark()
	out = push(t, env, img, ref)
	wantSent(t, "second push", r.traffic(m, "demo/app"), nil, 0, 0)
	if !strings.Contains(out, "0 blobs sent") || !strings.Contains(out, "3 skipped") || !strings.Contains(out, "1 unchanged") {
		t.Errorf("second push summary: %s", out)
	}

	// Another repository of the same registry: blobs mounted, not sent.
	m = r.mark()
	out = push(t, env, img, r.addr+"/other/app:1.0")
	wantSent(t, "push to another repository", r.traffic(m, "other/app"), nil, 3, 1)
	if !strings.Contains(out, "3 mounted") {
		t.Errorf("mount summary: %s", out)
	}

	// A second image sharing the base layer: only its app layer and config go.
	img2 := filepath.Join(t.TempDir(), "img2")
	testImage(t, img2, "amd64", "the second app", "2.0")
	cfg2, layers2 := manifestOf(t, img2)
	if layers2[0].Digest != layers[0].Digest {
		t.Fatal("the test images do not share their base layer")
	}
	m = r.mark()
	push(t, env, img2, r.addr+"/demo/app:2.0")
	wantSent(t, "sibling image", r.traffic(m, "demo/app"), digests(cfg2, layers2[1]), 0, 1)

	// Without a tag in REF, the layout's ref.name is the tag.
	m = r.mark()
	push(t, env, img2, r.addr+"/demo/app")
	if tr := r.traffic(m, "demo/app"); tr.manifestPuts != 0 {
		t.Errorf("push without a tag re-sent the manifest tagged 2.0: %+v", tr)
	}
}

// TestRegistryFaults: each failure gives the message a user needs and leaves
// no tag behind; a 500 then 201 is retried; a registry stopped in the middle
// of a push fails it clearly and the next push sends only what is missing.
func TestRegistryFaults(t *testing.T) {
	requireTools(t, "skopeo")
	r := startRegistry(t, registryOpts{})

	t.Run("corrupted blob", func(t *testing.T) {
		env := isolatedEnv(t)
		img := filepath.Join(t.TempDir(), "img")
		testImage(t, img, "amd64", "tampered", "1")
		_, layers := manifestOf(t, img)
		p := filepath.Join(img, "blobs", "sha256", strings.TrimPrefix(layers[1].Digest, "sha256:"))
		data, _ := os.ReadFile(p)
		data[len(data)/2] ^= 0xff
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m := r.mark()
		out := pushFails(t, env, "--jobs", "1", img, r.addr+"/bad/app:1")
		if !strings.Contains(out, layers[1].Digest) || !strings.Contains(out, "damaged") || !strings.Contains(out, "tag was not changed") {
			t.Errorf("message does not name the blob and what is wrong:\n%s", out)
		}
		tr := r.traffic(m, "bad/app")
		for _, d := range tr.blobsSent {
			if d == layers[1].Digest {
				t.Errorf("the tampered blob was sent")
			}
		}
		if tr.manifestPuts != 0 {
			t.Errorf("a manifest was PUT: %+v", tr)
		}
		noTag(t, r, "bad/app", "1")
	})

	t.Run("500 then 201", func(t *testing.T) {
		env := isolatedEnv(t)
		img := filepath.Join(t.TempDir(), "img")
		testImage(t, img, "amd64", "flaky", "1")
		var faults atomic.Int32
		proxy := faultProxy(t, r, func(req *http.Request) bool {
			// The first blob upload and the first manifest PUT get a 500.
			if req.Method != http.MethodPut {
				return false
			}
			kind := int32(1)
			if strings.Contains(req.URL.Path, "/manifests/") {
				kind = 2
			}
			for {
				old := faults.Load()
				if old&kind != 0 {
					return false
				}
				if faults.CompareAndSwap(old, old|kind) {
					return true
				}
			}
		})
		out := push(t, env, "--plain-http", img, proxy+"/flaky/app:1")
		if faults.Load() != 3 {
			t.Errorf("the proxy injected faults %b, want both", faults.Load())
		}
		if !strings.Contains(out, "3 blobs sent") {
			t.Errorf("summary after retries: %s", out)
		}
		insp, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "docker://"+r.addr+"/flaky/app:1").CombinedOutput()
		if err != nil {
			t.Errorf("skopeo inspect after a retried push: %v\n%s", err, insp)
		}
	})

	t.Run("500 for good", func(t *testing.T) {
		env := isolatedEnv(t)
		img := filepath.Join(t.TempDir(), "img")
		testImage(t, img, "amd64", "broken", "1")
		proxy := faultProxy(t, r, func(req *http.Request) bool {
			return req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/blobs/uploads/")
		})
		out := pushFails(t, env, "--plain-http", img, proxy+"/broken/app:1")
		if !strings.Contains(out, "500") || !strings.Contains(out, "injected fault") || !strings.Contains(out, "gave up after") {
			t.Errorf("message lacks the registry's answer or the retry count:\n%s", out)
		}
		noTag(t, r, "broken/app", "1")
	})

	t.Run("pull of a corrupted blob", func(t *testing.T) {
		env := isolatedEnv(t)
		img := filepath.Join(t.TempDir(), "img")
		testImage(t, img, "amd64", "pulled wrong", "1")
		push(t, env, img, r.addr+"/corrupt/app:1")
		_, layers := manifestOf(t, img)
		// A proxy that flips one byte of that layer's body (same length).
		target, _ := url.Parse(r.url())
		rp := httputil.NewSingleHostReverseProxy(target)
		rp.ErrorLog = log.New(io.Discard, "", 0)
		rp.ModifyResponse = func(resp *http.Response) error {
			if resp.Request.Method != http.MethodGet || !strings.HasSuffix(resp.Request.URL.Path, layers[1].Digest) {
				return nil
			}
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			resp.Body.Close()
			data[len(data)/2] ^= 0xff
			resp.Body = io.NopCloser(strings.NewReader(string(data)))
			return nil
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: rp}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
		dest := filepath.Join(t.TempDir(), "pulled")
		out, err := ocitoolsCmd(t, env, "pull", "--quiet", "--plain-http", l.Addr().String()+"/corrupt/app:1", dest)
		if err == nil || !strings.Contains(out, layers[1].Digest) || !strings.Contains(out, "content with digest") {
			t.Errorf("pull of a corrupted blob: %v\n%s", err, out)
		}
		if entries, _ := os.ReadDir(filepath.Dir(dest)); len(entries) != 0 {
			t.Errorf("a failed pull left %v", entries)
		}
	})

	t.Run("registry stopped mid-push", func(t *testing.T) {
		env := isolatedEnv(t)
		img := filepath.Join(t.TempDir(), "img")
		w := newLayout(t, img)
		var layers []desc
		for i := 0; i < 4; i++ {
			layers = append(layers, w.rawLayer(fmt.Sprintf("data%d", i), 6<<20, byte(i+1)))
		}
		w.image("amd64", []string{"/bin/true"}, layers, "1")
		cfg, _ := manifestOf(t, img)
		// A TCP relay that kills the registry once 10 MiB went through it:
		// one or two layers are complete, the next is cut off.
		relay := newRelay(t, r.addr, 10<<20, r.stop)
		m := r.mark()
		out := pushFails(t, env, "--plain-http", "--jobs", "1", img, relay.addr+"/stop/app:1")
		if !strings.Contains(out, "stopped") || !(strings.Contains(out, "connection refused") || strings.Contains(out, "connection reset") || strings.Contains(out, "EOF")) {
			t.Errorf("message after the registry went away:\n%s", out)
		}
		first := r.traffic(m, "stop/app")
		if first.manifestPuts != 0 || len(first.blobsSent) == 0 || len(first.blobsSent) >= 5 {
			t.Fatalf("before the stop the registry got %+v: want some blobs and no manifest", first)
		}
		r.start()
		noTag(t, r, "stop/app", "1")
		relay.up()
		m = r.mark()
		push(t, env, "--plain-http", img, relay.addr+"/stop/app:1")
		second := r.traffic(m, "stop/app")
		all := digests(append(layers, cfg)...)
		got := sortStrings(append(append([]string{}, first.blobsSent...), second.blobsSent...))
		if !reflect.DeepEqual(got, all) || second.manifestPuts != 1 {
			t.Errorf("first push sent %v, second %v (+%d manifests): want every blob exactly once, %v",
				first.blobsSent, second.blobsSent, second.manifestPuts, all)
		}
	})
}

// noTag checks that repo has no tag (the registry's own answer).
func noTag(t *testing.T, r *testRegistry, repo, tag string) {
	t.Helper()
	resp, err := r.httpClient().Head(r.url() + "/v2/" + repo + "/manifests/" + tag)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("%s:%s answers %d after a failed push: a dangling tag", repo, tag, resp.StatusCode)
	}
}

// faultProxy is an HTTP reverse proxy in front of r that answers 500 (with a
// registry-style error body) to the requests fault selects.
func faultProxy(t *testing.T, r *testRegistry, fault func(*http.Request) bool) string {
	t.Helper()
	target, _ := url.Parse(r.url())
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if fault(req) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"errors":[{"code":"UNKNOWN","message":"injected fault"}]}`)
			return
		}
		rp.ServeHTTP(w, req)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// relay forwards TCP to a registry; once `limit` bytes went upstream it calls
// down (which stops the registry), cuts every connection and refuses new ones
// until up is called.
type relay struct {
	t      *testing.T
	target string
	down   func()
	l      net.Listener
	addr   string
	mu     sync.Mutex
	conns  []net.Conn
	sent   atomic.Int64
	isDown atomic.Bool
	limit  int64
}

func newRelay(t *testing.T, target string, limit int64, down func()) *relay {
	t.Helper()
	rl := &relay{t: t, target: target, limit: limit, down: down}
	rl.listen("127.0.0.1:0")
	t.Cleanup(func() { rl.stop() })
	return rl
}

func (rl *relay) listen(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		rl.t.Fatal(err)
	}
	rl.mu.Lock()
	rl.l, rl.addr = l, l.Addr().String()
	rl.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", rl.target)
			if err != nil {
				c.Close()
				continue
			}
			rl.mu.Lock()
			rl.conns = append(rl.conns, c, u)
			rl.mu.Unlock()
			go func() { // downstream
				_, _ = io.Copy(c, u)
				c.Close()
			}()
			go func() { // upstream, counted
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if rl.limit > 0 && rl.sent.Add(int64(n)) > rl.limit && rl.isDown.CompareAndSwap(false, true) {
							// The registry goes away: no one listens any more.
							rl.down()
							rl.stop()
							break
						}
						if _, werr := u.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				u.Close()
			}()
		}
	}()
}

func (rl *relay) stop() {
	rl.mu.Lock()
	if rl.l != nil {
		rl.l.Close()
	}
	rl.mu.Unlock()
	rl.cut()
}

func (rl *relay) cut() {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	for _, c := range rl.conns {
		c.Close()
	}
	rl.conns = nil
}

// up listens again on the same address, without a limit.
func (rl *relay) up() {
	rl.limit = 0
	rl.listen(rl.addr)
}

// TestRegistryAuthTLS: htpasswd and TLS from a certificate made here. Wrong
// credentials and an unknown CA fail with what to do and leave no tag; the
// right ones, from --creds or an auth file, push.
func TestRegistryAuthTLS(t *testing.T) {
	r := startRegistry(t, registryOpts{tls: true, auth: true})
	img := filepath.Join(t.TempDir(), "img")
	testImage(t, img, "amd64", "secured", "1")
	ref := r.addr + "/sec/app:1"

	env := isolatedEnv(t)
	out := pushFails(t, env, "--ca", r.caFile, "--creds", r.user+":wrong", img, ref)
	if !strings.Contains(out, "refused the credentials") || !strings.Contains(out, "--creds") {
		t.Errorf("wrong credentials:\n%s", out)
	}
	out = pushFails(t, env, "--creds", r.user+":"+r.pass, img, ref)
	if !strings.Contains(out, "unknown authority") || !strings.Contains(out, "--ca") {
		t.Errorf("unknown CA:\n%s", out)
	}
	out = pushFails(t, env, "--ca", r.caFile, img, ref)
	if !strings.Contains(out, "asks for credentials") || !strings.Contains(out, "--creds") {
		t.Errorf("no credentials:\n%s", out)
	}
	m := r.mark()
	if tr := r.traffic(0, "sec/app"); tr.manifestPuts != 0 || len(tr.blobsSent) != 0 {
		t.Errorf("failed pushes sent %+v", tr)
	}

	// --creds.
	push(t, env, "--ca", r.caFile, "--creds", r.user+":"+r.pass, img, ref)
	if tr := r.traffic(m, "sec/app"); tr.manifestPuts != 1 || len(tr.blobsSent) != 3 {
		t.Errorf("push with --creds: %+v", tr)
	}
	// A podman-style auth file in $REGISTRY_AUTH_FILE, and a docker one in
	// ~/.docker/config.json: the second push finds everything there.
	authJSON := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, r.addr, base64.StdEncoding.EncodeToString([]byte(r.user+":"+r.pass)))
	for _, where := range []string{"REGISTRY_AUTH_FILE", "docker"} {
		env := isolatedEnv(t)
		home := strings.TrimPrefix(env[0], "HOME=")
		file := filepath.Join(home, "auth.json")
		if where == "docker" {
			file = filepath.Join(home, ".docker", "config.json")
		} else {
			env = append(env, "REGISTRY_AUTH_FILE="+file)
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(authJSON), 0o600); err != nil {
			t.Fatal(err)
		}
		out := push(t, env, "--ca", r.caFile, img, ref)
		if !strings.Contains(out, "3 skipped") {
			t.Errorf("push with credentials from %s: %s", where, out)
		}
	}
	// A damaged auth file is named.
	bad := filepath.Join(t.TempDir(), "auth.json")
	_ = os.WriteFile(bad, []byte(`{"auths":{"x":{"auth":"!!"}}}`), 0o600)
	out = pushFails(t, append(isolatedEnv(t), "REGISTRY_AUTH_FILE="+bad), "--ca", r.caFile, img, ref)
	if !strings.Contains(out, bad) || !strings.Contains(out, "base64") {
		t.Errorf("damaged auth file:\n%s", out)
	}
	// Pull with TLS and auth.
	pulled := filepath.Join(t.TempDir(), "p")
	if out, err := ocitoolsCmd(t, env, "pull", "--quiet", "--ca", r.caFile, "--creds", r.user+":"+r.pass, ref, pulled); err != nil {
		t.Errorf("pull: %v\n%s", err, out)
	}
	// A failed pull leaves nothing.
	failed := filepath.Join(t.TempDir(), "f")
	if _, err := ocitoolsCmd(t, env, "pull", "--quiet", "--ca", r.caFile, "--creds", r.user+":wrong", ref, failed); err == nil {
		t.Error("pull with wrong credentials succeeded")
	}
	if entries, _ := os.ReadDir(filepath.Dir(failed)); len(entries) != 0 {
		t.Errorf("a failed pull left %v", entries)
	}
}

// TestRegistryMultiArch: build-index of an amd64 and an arm64 image pushes as
// one index; skopeo inspect --raw shows both platforms; the amd64 one runs.
func TestRegistryMultiArch(t *testing.T) {
	requireTools(t, "skopeo", "podman")
	r := startRegistry(t, registryOpts{})
	env := isolatedEnv(t)
	tmp := t.TempDir()
	amd, arm := filepath.Join(tmp, "amd64"), filepath.Join(tmp, "arm64")
	da := testImage(t, amd, "amd64", "multi-arch amd64", "1")
	dr := testImage(t, arm, "arm64", "multi-arch arm64", "1")
	idx := filepath.Join(tmp, "index")
	if out, err := ocitoolsCmd(t, env, "build-index", "--out", idx, "--tag", "multi", amd, arm); err != nil {
		t.Fatalf("build-index: %v\n%s", err, out)
	}
	if out, err := ocitoolsCmd(t, env, "build-index", "--out", filepath.Join(tmp, "dup"), "--tag", "x", amd, amd); err == nil || !strings.Contains(out, "linux/amd64") {
		t.Errorf("two amd64 images: %v\n%s", err, out)
	}
	ref := r.addr + "/multi/app:multi"
	m := r.mark()
	push(t, env, idx, r.addr+"/multi/app")
	tr := r.traffic(m, "multi/app")
	if tr.manifestPuts != 3 || len(tr.blobsSent) != 5 { // shared base, two apps, two configs
		t.Errorf("index push: %+v", tr)
	}
	raw, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect --raw: %v\n%s", err, raw)
	}
	var index struct {
		Manifests []struct {
			Digest   string
			Platform struct{ Architecture, OS string }
		}
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	got := map[string]string{}
	for _, m := range index.Manifests {
		got[m.Platform.OS+"/"+m.Platform.Architecture] = m.Digest
	}
	if want := map[string]string{"linux/amd64": da.Digest, "linux/arm64": dr.Digest}; !reflect.DeepEqual(got, want) {
		t.Errorf("index lists %v, want %v", got, want)
	}
	if out := podmanPullRun(t, ref); !strings.Contains(out, "multi-arch amd64") {
		t.Errorf("podman run of the index printed %q", out)
	}
	// Pulled back: the index and both images.
	pulled := filepath.Join(tmp, "pulled")
	if out, err := ocitoolsCmd(t, env, "pull", "--quiet", ref, pulled); err != nil {
		t.Fatalf("pull: %v\n%s", err, out)
	}
	if got, want := layoutBlobs(t, pulled), layoutBlobs(t, idx); !reflect.DeepEqual(got, want) {
		t.Errorf("pulled %v, pushed %v", got, want)
	}
}

// TestRegistryDeadlines: a registry that stops reading an upload is given up
// on after --stall-timeout, with a message saying so, and no tag.
func TestRegistryDeadlines(t *testing.T) {
	r := startRegistry(t, registryOpts{})
	env := isolatedEnv(t)
	img := filepath.Join(t.TempDir(), "img")
	w := newLayout(t, img)
	w.image("amd64", []string{"/bin/true"}, []desc{w.rawLayer("big", 32<<20, 7)}, "1")
	proxy := faultProxy(t, r, func(req *http.Request) bool {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/blobs/uploads/") && req.ContentLength > 1<<20 {
			<-req.Context().Done() // never reads the body, never answers
		}
		return false
	})
	start := time.Now()
	out := pushFails(t, env, "--plain-http", "--stall-timeout", "1s", "--jobs", "1", img, proxy+"/stall/app:1")
	if !strings.Contains(out, "the stall deadline (1s) passed (--stall-timeout)") {
		t.Errorf("stalled upload:\n%s", out)
	}
	// A deadline is final: not tried 4 times over (about 7.5 s before).
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("giving up took %s", d)
	}
	noTag(t, r, "stall/app", "1")
}

// TestRegistryProgress: one bar per blob on a terminal, plain lines and the
// summary otherwise.
func TestRegistryProgress(t *testing.T) {
	requireTools(t, "script")
	r := startRegistry(t, registryOpts{})
	img := filepath.Join(t.TempDir(), "img")
	testImage(t, img, "amd64", "progress", "1")
	env := isolatedEnv(t)
	out, err := ocitoolsCmd(t, env, "push", img, r.addr+"/plain/app:1")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if n := strings.Count(out, " sent\n"); n != 3 || !strings.Contains(out, "pushed ") {
		t.Errorf("plain output: %d lines ending in sent, want 3:\n%s", n, out)
	}
	cmd := exec.Command("script", "-qec", "stty rows 40 cols 120; "+ocitoolsBin+" push "+img+" "+r.addr+"/tty/app:1", "/dev/null")
	cmd.Env = append(os.Environ(), isolatedEnv(t)...) // no record of the first push: blobs are sent
	tty, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("push on a terminal: %v\n%s", err, tty)
	}
	if !strings.Contains(string(tty), "[===") || strings.Count(string(tty), " sent ") < 3 || !strings.Contains(string(tty), "1.0 MiB / 1.0 MiB") || !strings.Contains(string(tty), "pushed ") {
		t.Errorf("terminal output has no bars:\n%q", tty)
	}
}

// TestRegistryBearerToken: a registry with token auth (the scheme of Docker
// Hub, GHCR, ...): push and pull with the right credentials get tokens and
// work, wrong ones are refused with the token server's message and no tag.
func TestRegistryBearerToken(t *testing.T) {
	r := startRegistry(t, registryOpts{token: true})
	env := isolatedEnv(t)
	img := filepath.Join(t.TempDir(), "img")
	testImage(t, img, "amd64", "token", "1")
	ref := r.addr + "/tok/app:1"
	out := pushFails(t, env, "--creds", r.user+":wrong", img, ref)
	if !strings.Contains(out, "refused the credentials") || !strings.Contains(out, "wrong user name or password") {
		t.Errorf("wrong credentials:\n%s", out)
	}
	noTag(t, r, "tok/app", "1")
	m := r.mark()
	push(t, env, "--creds", r.user+":"+r.pass, img, ref)
	if tr := r.traffic(m, "tok/app"); tr.manifestPuts != 1 || len(tr.blobsSent) != 3 {
		t.Errorf("push with a token: %+v", tr)
	}
	if r.tokens.issued.Load() == 0 {
		t.Error("no token was issued: the push did not use bearer auth")
	}
	pulled := filepath.Join(t.TempDir(), "p")
	if out, err := ocitoolsCmd(t, env, "pull", "--quiet", "--creds", r.user+":"+r.pass, ref, pulled); err != nil {
		t.Errorf("pull with a token: %v\n%s", err, out)
	}
}
