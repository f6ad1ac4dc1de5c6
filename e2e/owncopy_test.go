package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// In copy mode a bind whose source is a closure path binds the bundle's own
// copy (a source relative to the bundle, read-only), so the bundle is
// self-contained: a copy of it elsewhere reads its own files, not the host's
// store. ocitools run, as root and rootless, binds it read-only.
func TestCopyModeBindsTheBundlesOwnCopy(t *testing.T) {
	expr := `let
	  data = runCommand "bound-data" { } "mkdir -p $out/dir; echo from-the-copy > $out/msg; echo in-dir > $out/dir/f";
	in ociTools.buildContainer {
	  args = [ "${busybox}/bin/sh" "-c" "cat /etc/msg /mnt/f; echo x > /etc/msg && echo WROTE-FILE; echo x > /mnt/f && echo WROTE-DIR; true" ];
	  mounts."/etc/msg" = { type = "bind"; source = "${data}/msg"; options = [ "rbind" "rw" ]; };
	  mounts."/mnt" = { type = "bind"; source = "${data}/dir"; };
	}`
	bundle := nixBuild(t, expr)
	var cfg specs.Spec
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	must(t, err)
	must(t, json.Unmarshal(data, &cfg))
	for _, m := range cfg.Mounts {
		if m.Destination != "/etc/msg" && m.Destination != "/mnt" {
			continue
		}
		if !strings.HasPrefix(m.Source, "rootfs/nix/store/") || !strings.Contains(strings.Join(m.Options, ","), "ro") {
			t.Errorf("mount %s: source %q options %q, want the bundle's own copy, read-only", m.Destination, m.Source, m.Options)
		}
	}
	const want = "from-the-copy\nin-dir\n"
	if got := runBundle(t, bundle); got != want {
		t.Errorf("runc run printed %q, want %q and no write", got, want)
	}
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			res := runCmd(t, r.cmd(t, "run", bundle))
			if res.code != 0 || res.stdout != want {
				t.Errorf("ocitools run: exit %d, stdout %q (want %q), stderr %s", res.code, res.stdout, want, res.stderr)
			}
		})
	}
	// A copy of the bundle elsewhere reads its own files: change the copy's
	// file and the container sees the change, though the host store has the
	// original.
	moved := filepath.Join(t.TempDir(), "moved")
	if out, err := exec.Command("cp", "-a", bundle, moved).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chmod", "-R", "u+w", moved).Run() })
	var msg string
	for _, m := range cfg.Mounts {
		if m.Destination == "/etc/msg" {
			msg = filepath.Join(moved, m.Source)
		}
	}
	must(t, os.Chmod(filepath.Dir(msg), 0o755))
	must(t, os.Remove(msg))
	must(t, os.WriteFile(msg, []byte("changed-in-the-copy\n"), 0o444))
	if got := runBundle(t, moved); got != "changed-in-the-copy\nin-dir\n" {
		t.Errorf("runc run of the moved bundle printed %q: it does not read its own copy", got)
	}
}
