package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocitools/ocitools/image/layout/layouttest"
	"github.com/ocitools/ocitools/registry/registrytest"
	"github.com/ocitools/ocitools/unpack/unpacktest"
)

// stopWithin is how long a stage may take to stop after SIGINT or SIGTERM.
// Issue 19 asks for a second and the measured stops take milliseconds
// (docs/run.md); the test allows three so that a loaded machine does not fail
// it, which still tells a stop from a transfer that never ends.
const stopWithin = 3 * time.Second

// hostileCmd starts ocitools against a hostile registry in its own scratch
// directory (also its TMPDIR), and waits until the layer transfer started.
type hostileCmd struct {
	cmd     *exec.Cmd
	scratch string
	out     bytes.Buffer
}

func startHostile(t *testing.T, s *registrytest.Server, verb string, extra ...string) *hostileCmd {
	t.Helper()
	h := &hostileCmd{scratch: t.TempDir()}
	tmp := filepath.Join(h.scratch, "tmp")
	must(t, os.Mkdir(tmp, 0o700))
	ref := s.Host + "/hostile:v1"
	var args []string
	switch verb {
	case "pull":
		args = []string{"pull", "--quiet", ref, filepath.Join(h.scratch, "out")}
	case "unpack":
		args = []string{"unpack", ref, filepath.Join(h.scratch, "bundle")}
	case "run":
		args = []string{"run", ref}
	case "push":
		// A layer of 4 MiB: at a byte every 50 ms, never sent whole.
		im := unpacktest.Image{Tag: "v1", Layers: []unpacktest.Layer{{Compression: "",
			Entries: []unpacktest.Entry{{Name: "big", Body: strings.Repeat("x", 4<<20)}}}}}
		im.Config.Cmd = []string{"/big"}
		args = []string{"push", "--quiet", writeLayout(t, filepath.Join(t.TempDir(), "layout"), im), ref}
	}
	args = append(args[:1], append(extra, args[1:]...)...)
	h.cmd = exec.Command(ocitoolsBin, args...)
	h.cmd.Env = append(os.Environ(), append(isolatedEnv(t), "TMPDIR="+tmp)...)
	h.cmd.Stdout, h.cmd.Stderr = &h.out, &h.out
	must(t, h.cmd.Start())
	t.Cleanup(func() {
		if h.cmd.ProcessState == nil {
			_ = h.cmd.Process.Kill()
			_ = h.cmd.Wait()
		}
	})
	kind := "layer"
	if verb == "push" {
		kind = "upload"
	}
	before := s.Count(kind)
	deadline := time.Now().Add(20 * time.Second)
	for s.Count(kind) == before {
		if time.Now().After(deadline) {
			t.Fatalf("%s never started sending or fetching the layer: %s", verb, h.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a few bytes written
	return h
}

// leftovers lists what is in the scratch directory and its TMPDIR.
func (h *hostileCmd) leftovers() []string {
	var left []string
	for _, d := range []string{h.scratch, filepath.Join(h.scratch, "tmp")} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if d == h.scratch && e.Name() == "tmp" {
				continue
			}
			left = append(left, filepath.Join(d, e.Name()))
		}
	}
	return left
}

// Every stage that talks to a registry (pull; image resolution in unpack
// and run; push) stops on SIGINT or SIGTERM within about a second while a
// hostile registry trickles a layer (or reads an upload a byte at a time),
// exits 128+N, and leaves nothing behind.
func TestAdversarialRegistryInterrupted(t *testing.T) {
	if !enabled {
		t.Skip("set OCITOOLS_E2E=1")
	}
	for _, verb := range []string{"pull", "unpack", "run", "push"} {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			t.Run(verb+"/"+sig.String(), func(t *testing.T) {
				s := registrytest.New(t, registrytest.Trickle)
				h := startHostile(t, s, verb)
				if left := h.leftovers(); len(left) == 0 && verb != "push" {
					t.Fatalf("%s wrote nothing while pulling: the test checks nothing", verb)
				}
				start := time.Now()
				must(t, h.cmd.Process.Signal(sig))
				err := h.cmd.Wait()
				took := time.Since(start)
				t.Logf("%s stopped %s after %v: %s", verb, took, sig, strings.TrimSpace(h.out.String()))
				if took > stopWithin {
					t.Errorf("%s took %s to stop after %v", verb, took, sig)
				}
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 128+int(sig) {
					t.Errorf("%s: %v, want exit %d", verb, err, 128+int(sig))
				}
				if left := h.leftovers(); len(left) > 0 {
					t.Errorf("%s left %v", verb, left)
				}
			})
		}
	}
}

// What SIGKILL leaves (.DIR.pull-* with partial blobs, unpack's pulled
// layout) is reclaimed by the next pull or unpack in the same directory.
func TestAdversarialRegistryKilledReclaimed(t *testing.T) {
	if !enabled {
		t.Skip("set OCITOOLS_E2E=1")
	}
	for _, verb := range []string{"pull", "unpack", "run"} {
		t.Run(verb, func(t *testing.T) {
			s := registrytest.New(t, registrytest.Trickle)
			h := startHostile(t, s, verb)
			must(t, h.cmd.Process.Kill())
			_ = h.cmd.Wait()
			left := h.leftovers()
			if len(left) == 0 {
				t.Fatalf("%s left nothing after SIGKILL: the test checks nothing", verb)
			}
			t.Logf("SIGKILL left %v", left)
			// The next one, in the same place, gives up after a second.
			next := exec.Command(ocitoolsBin, h.cmd.Args[1:]...)
			next.Args = append([]string{next.Args[0], next.Args[1], "--timeout", "1s"}, next.Args[2:]...)
			next.Env = h.cmd.Env
			out, err := next.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "whole command deadline (1s) passed (--timeout)") {
				t.Errorf("the next %s: %v: %s", verb, err, out)
			}
			if left := h.leftovers(); len(left) > 0 {
				t.Errorf("after the next %s: %v left (%s)", verb, left, out)
			}
		})
	}
}

// fanOutLayout writes an image layout whose index lists k indexes, each
// listing the same k indexes, each listing one manifest for a platform
// nobody asks for: a walk that does not remember what it visited reads k*k
// documents before it gives up (k=400: about 11 s on the test machine).
func fanOutLayout(t *testing.T, dir string, k int) {
	t.Helper()
	leaf, err := layouttest.Image(dir, "linux", "s390x")
	must(t, err)
	must(t, layouttest.FanOut(dir, k, 2, leaf))
}

// Image resolution that does not watch for signals (a walk of a hostile
// image graph) cannot hold unpack or run: SIGINT or SIGTERM ends them within
// about a second (before: the whole walk, 10.7 s for this layout), nothing
// left. A walk that is fast by itself passes too: it must then have ended by
// the same deadline.
func TestAdversarialImageWalkInterrupted(t *testing.T) {
	if !enabled {
		t.Skip("set OCITOOLS_E2E=1")
	}
	layout := filepath.Join(t.TempDir(), "fanout")
	fanOutLayout(t, layout, 400)
	for _, verb := range []string{"unpack", "run"} {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			t.Run(verb+"/"+sig.String(), func(t *testing.T) {
				scratch := t.TempDir()
				args := []string{verb, "--platform", "linux/amd64", layout}
				if verb == "unpack" {
					args = append(args, filepath.Join(scratch, "bundle"))
				}
				cmd := exec.Command(ocitoolsBin, args...)
				cmd.Env = append(os.Environ(), "TMPDIR="+scratch)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				must(t, cmd.Start())
				time.Sleep(time.Second)
				sent := time.Now()
				_ = cmd.Process.Signal(sig) // it may have finished: then it must be done by now
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case <-done:
				case <-time.After(stopWithin):
					_ = cmd.Process.Kill()
					<-done
					t.Fatalf("%s still walking %s after %v", verb, stopWithin, sig)
				}
				t.Logf("%s ended %s after %v: %s", verb, time.Since(sent), sig, strings.TrimSpace(out.String()))
				if ents, _ := os.ReadDir(scratch); len(ents) != 0 {
					t.Errorf("%s left %v", verb, ents)
				}
			})
		}
	}
}

// A registry's words reach the terminal escaped (an ESC sequence in an
// error body), and a deadline is named and taken once, with the request
// count the message states.
func TestAdversarialRegistryAnswers(t *testing.T) {
	if !enabled {
		t.Skip("set OCITOOLS_E2E=1")
	}
	pull := func(t *testing.T, s *registrytest.Server, flags ...string) (string, time.Duration) {
		args := append(append([]string{"pull", "--quiet"}, flags...), s.Host+"/hostile:v1", filepath.Join(t.TempDir(), "out"))
		start := time.Now()
		out, err := ocitoolsCmd(t, isolatedEnv(t), args...)
		if err == nil {
			t.Fatalf("pull from a hostile registry succeeded: %s", out)
		}
		return out, time.Since(start)
	}
	t.Run("escape", func(t *testing.T) {
		s := registrytest.New(t, registrytest.Status)
		s.Status, s.Body = 400, "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"\\u001b]0;owned\\u0007\\u001b[2J\\nocitools: pulled\"}]}"
		out, _ := pull(t, s)
		if strings.ContainsAny(out, "\x1b\x07") || strings.Count(out, "\n") != 1 {
			t.Errorf("control characters from the registry reached the terminal: %q", out)
		}
		if !strings.Contains(out, `\x1b]0;owned\x07\x1b[2J\x0aocitools: pulled`) {
			t.Errorf("the registry's message is not shown escaped: %q", out)
		}
	})
	t.Run("headers-deadline", func(t *testing.T) {
		s := registrytest.New(t, registrytest.NoHeaders)
		out, took := pull(t, s, "--response-timeout", "500ms")
		if n := s.Count("layer"); n != 1 || took > 15*time.Second { // the count is the check; the server never answers
			t.Errorf("%d layer requests in %s; want 1, about 0.5 s", n, took)
		}
		if !strings.Contains(out, "the response headers deadline (500ms) passed (--response-timeout)") {
			t.Errorf("the deadline is not named: %s", out)
		}
	})
	t.Run("retries", func(t *testing.T) {
		s := registrytest.New(t, registrytest.Status)
		s.Status, s.Body = 503, `{"errors":[{"code":"UNAVAILABLE","message":"later"}]}`
		out, _ := pull(t, s)
		if n := s.Count("layer"); n != 4 || !strings.Contains(out, "gave up after 4 attempts") {
			t.Errorf("%d layer requests (want 4, as the message says): %s", n, out)
		}
	})
}

// What unpack writes, run accepts: an image whose Env would make a
// config.json past the limit run and validate read is refused by unpack
// with their limit and words, and nothing is left.
func TestAdversarialUnpackConfigLimit(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	im := whiteoutImage(t, "/bin/true")
	im.Config.Env = []string{"BIG=" + strings.Repeat("x", 5<<20)}
	layout := writeLayout(t, filepath.Join(dir, "layout"), im)
	out := filepath.Join(dir, "out")
	must(t, os.Mkdir(out, 0o755))
	got, err := ocitoolsCmd(t, nil, "unpack", layout, filepath.Join(out, "bundle"))
	want := "config.json is "
	limit := "more than the 4194304 bytes allowed"
	if err == nil || !strings.Contains(got, want) || !strings.Contains(got, limit) {
		t.Errorf("unpack: %v: %s; want the config.json size refusal", err, got)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
	// validate says the same of such a bundle.
	b := filepath.Join(dir, "bundle")
	must(t, os.MkdirAll(filepath.Join(b, "rootfs"), 0o755))
	must(t, os.WriteFile(filepath.Join(b, "config.json"), []byte(`{"env":"`+strings.Repeat("x", 5<<20)+`"}`), 0o644))
	if got, err := ocitoolsCmd(t, nil, "validate", b); err == nil || !strings.Contains(got, want) || !strings.Contains(got, limit) {
		t.Errorf("validate: %v: %s", err, got)
	}
}
