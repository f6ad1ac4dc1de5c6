package partial

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A partial output whose writer is gone (its lock released without its
// files removed, as SIGKILL leaves them) is reclaimed by the next Create; a
// live writer's is not.
func TestReclaim(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	live, err := Create(out, ".pull-", "pull", os.RemoveAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Release()
	must(t, os.MkdirAll(filepath.Join(live.Path, "blobs"), 0o755))

	dead, err := Create(out, ".pull-", "pull", os.RemoveAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.MkdirAll(filepath.Join(dead.Path, "blobs"), 0o755))
	dead.lock.Close() // the process died: the kernel dropped its lock

	next, err := Create(out, ".pull-", "pull", os.RemoveAll, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Release()
	if _, err := os.Lstat(dead.Path); !os.IsNotExist(err) {
		t.Errorf("the dead writer's %s was not reclaimed: %v", dead.Path, err)
	}
	if _, err := os.Lstat(dead.Path + lockSuffix); !os.IsNotExist(err) {
		t.Errorf("the dead writer's lock was not removed: %v", err)
	}
	if _, err := os.Lstat(live.Path); err != nil {
		t.Errorf("the live writer's output was removed: %v", err)
	}
	// Another infix is another protocol's: left alone.
	other := filepath.Join(dir, ".x.partial-1")
	must(t, os.Mkdir(other, 0o755))
	must(t, os.WriteFile(other+lockSuffix, nil, 0o600))
	Reclaim(dir, ".pull-", "pull", os.RemoveAll, nil)
	if _, err := os.Lstat(other); err != nil {
		t.Errorf("another infix's partial output was removed: %v", err)
	}
}

// A lock held by another process is not taken.
func TestReclaimSparesOtherProcess(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) is not installed")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, ".o.pull-1")
	must(t, os.Mkdir(p, 0o755))
	must(t, os.WriteFile(p+lockSuffix, nil, 0o600))
	cmd := exec.Command("flock", p+lockSuffix, "sleep", "5")
	must(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for i := 0; i < 100; i++ { // until flock(1) holds it
		f, _ := os.Open(p + lockSuffix)
		if f == nil {
			break
		}
		held := flockBusy(f)
		f.Close()
		if held {
			break
		}
		exec.Command("sleep", "0.02").Run()
	}
	if gone := Reclaim(dir, ".pull-", "pull", os.RemoveAll, nil); len(gone) != 0 {
		t.Errorf("reclaimed %v, locked by a live process", gone)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func flockBusy(f *os.File) bool {
	if err := syscallFlock(f); err != nil {
		return true
	}
	return false
}
