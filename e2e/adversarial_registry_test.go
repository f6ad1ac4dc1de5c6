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

	"github.com/ocitools/ocitools/registry/registrytest"
)

// stopWithin is how long a stage may take to stop after SIGINT or SIGTERM
// (issue 19 asks for a second; a loaded test machine gets half a second more).
const stopWithin = 1500 * time.Millisecond

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
	before := s.Count("layer")
	deadline := time.Now().Add(20 * time.Second)
	for s.Count("layer") == before {
		if time.Now().After(deadline) {
			t.Fatalf("%s never asked for the layer: %s", verb, h.out.String())
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

// Every stage that reads a registry (pull; image resolution in unpack and
// run) stops on SIGINT or SIGTERM within about a second while a hostile
// registry trickles a layer, exits 128+N, and leaves nothing behind.
func TestAdversarialRegistryInterrupted(t *testing.T) {
	if !enabled {
		t.Skip("set OCITOOLS_E2E=1")
	}
	for _, verb := range []string{"pull", "unpack", "run"} {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			t.Run(verb+"/"+sig.String(), func(t *testing.T) {
				s := registrytest.New(t, registrytest.Trickle)
				h := startHostile(t, s, verb)
				if left := h.leftovers(); len(left) == 0 {
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
