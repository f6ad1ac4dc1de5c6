package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// storeEntry returns the rootfs entry of the store path in bundle whose name
// ends with suffix.
func storeEntry(t *testing.T, bundle, suffix string) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(bundle, "rootfs/nix/store/*-"+suffix))
	if err != nil || len(matches) != 1 {
		t.Fatalf("rootfs/nix/store/*-%s in %s: %v %v", suffix, bundle, matches, err)
	}
	return matches[0]
}

func ocitoolsVerify(t *testing.T, bundle string) (string, int) {
	t.Helper()
	out, err := exec.Command(ocitoolsBin, "verify", bundle).CombinedOutput()
	return string(out), exitCode(t, err)
}

// Both store modes build reproducibly, run with runc as root and with ocitools
// run as root and rootless, leave the store
// path untouched and verify; copy mode keeps a symlink that points outside its
// store path as a symlink.
func TestStoreModes(t *testing.T) {
	for _, tc := range []struct{ name, mode, extra string }{
		{"copy", "copy", ""},
		{"copy-verify", "copy", "verify = true;"},
		{"bind", "bind", ""},
	} {
		mode := tc.mode
		t.Run(tc.name, func(t *testing.T) {
			expr := `let
			  data = runCommand "linkdata" { } "mkdir -p $out/share; echo payload > $out/share/msg; ln -s /etc/hostname $out/outside; ln -s share/msg $out/inside";
			in ociTools.buildContainer {
			  args = [ "${busybox}/bin/sh" "-c" "cat ${data}/inside; readlink ${data}/outside; ls /nix/store | wc -l" ];
			  storeMode = "` + mode + `";
			  ` + tc.extra + `
			}`
			bundle := nixBuild(t, expr)
			got := runBundle(t, bundle)
			// busybox, linkdata: the closure of args, nothing else.
			if got != "payload\n/etc/hostname\n2\n" {
				t.Errorf("container printed %q", got)
			}
			// ocitools run, as root and rootless (an unprivileged user).
			for _, r := range runners(t) {
				res := runCmd(t, r.cmd(t, "run", bundle))
				if res.code != 0 || res.stdout != "payload\n/etc/hostname\n2\n" {
					t.Errorf("ocitools run (%s): exit %d, stdout %q, stderr %s", r.name, res.code, res.stdout, res.stderr)
				}
			}
			data := storeEntry(t, bundle, "linkdata")
			switch mode {
			case "copy":
				if target, err := os.Readlink(filepath.Join(data, "outside")); err != nil || target != "/etc/hostname" {
					t.Errorf("outside symlink in the copy: %q, %v", target, err)
				}
			case "bind":
				if ents, err := os.ReadDir(data); err != nil || len(ents) != 0 {
					t.Errorf("bind mode mount point %s holds %v (%v), want an empty directory", data, ents, err)
				}
			}
			if out, code := ocitoolsVerify(t, bundle); code != 0 || !strings.HasSuffix(out, ": 2 paths verified\n") {
				t.Errorf("ocitools verify %s: exit %d\n%s", bundle, code, out)
			}
		})
	}
}

// A copy of a bundle taken out of the store and altered is reported by
// ocitools verify, naming the store path, with exit status 1.
func TestVerifyReportsCorruptedCopy(t *testing.T) {
	bundle := nixBuild(t, `ociTools.buildContainer { args = [ "${busybox}/bin/sh" "-c" "true" ]; }`)
	if out, code := ocitoolsVerify(t, bundle); code != 0 {
		t.Fatalf("verify of the built bundle: exit %d\n%s", code, out)
	}
	cp := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command("cp", "-a", bundle, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chmod", "-R", "u+w", cp).Run() })
	bb := storeEntry(t, cp, "busybox")
	target := filepath.Join(bb, "bin", "busybox")
	if out, err := exec.Command("chmod", "-R", "u+w", bb).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v\n%s", err, out)
	}
	f, err := os.OpenFile(target, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0}, 1000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, code := ocitoolsVerify(t, cp)
	name := "/nix/store/" + filepath.Base(bb)
	// The writable directories left by the tampering are reported too.
	if code != 1 || !strings.HasPrefix(out, name+": contents differ") && !strings.Contains(out, "\n"+name+": contents differ") {
		t.Errorf("verify of the altered copy: exit %d, output:\n%s\nwant exit 1 and a line starting %q", code, out, name+": contents differ")
	}
}

// contents gives a working /bin/sh, in both store modes; /etc/passwd names the
// configured user.
func TestContentsBinSh(t *testing.T) {
	for _, mode := range []string{"copy", "bind"} {
		t.Run(mode, func(t *testing.T) {
			expr := `ociTools.buildContainer {
			  args = [ "/bin/sh" "-c" "echo shell works; ls /bin/ls; id -un" ];
			  contents = [ busybox ];
			  storeMode = "` + mode + `";
			}`
			bundle := nixBuild(t, expr)
			if got := runBundle(t, bundle); got != "shell works\n/bin/ls\nroot\n" {
				t.Errorf("container printed %q", got)
			}
		})
	}
}

// Two contents providing the same file: the build fails naming both.
func TestContentsConflictNamesBoth(t *testing.T) {
	log := nixBuildFail(t, `let
	  a = runCommand "conflict-a" { } "mkdir -p $out/bin; echo a > $out/bin/tool";
	  b = runCommand "conflict-b" { } "mkdir -p $out/bin; echo b > $out/bin/tool";
	in ociTools.buildContainer {
	  args = [ "${busybox}/bin/sh" ];
	  contents = [ a b ];
	}`)
	for _, want := range []string{"/bin/tool is provided by both", "-conflict-a/bin/tool", "-conflict-b/bin/tool"} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not contain %q:\n%s", want, log)
		}
	}
}
