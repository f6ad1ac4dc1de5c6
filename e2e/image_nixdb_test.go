package e2e

import (
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// nixDBExpr is an image of the small application with a Nix database; extra
// are more buildImage arguments.
func nixDBExpr(extra string) string {
	return imageLet + `ociTools.buildImage {
	  name = "nixdb";
	  config.Entrypoint = [ app ];
	  config.Env = [ "BUSYBOX=${busybox}" "DATA=${data}" ];
	  initializeNixDatabase = true;
	  ` + extra + `
	}`
}

// nixInImage runs the host's nix-store inside the image with podman: there is
// no Nix in the image (no nixpkgs here), so Debian's binary and its libraries
// are bind-mounted read-only, and it uses its defaults, /nix/store and
// /nix/var/nix, which are the image's. USER: the image has no /etc/passwd.
func nixInImage(t *testing.T, podman func(...string) (string, string, error), image string, user string, entrypoint string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	run := append([]string{}, podmanRun...)
	run = append(run, "-v", "/usr:/usr:ro", "-v", "/usr/lib:/lib:ro", "-v", "/usr/lib64:/lib64:ro",
		"-v", "/etc/ld.so.cache:/etc/ld.so.cache:ro", "--env", "USER=nixuser", "--env", "HOME=/homeless",
		"--user", user, "--entrypoint", entrypoint, image)
	return podman(append(run, args...)...)
}

// initializeNixDatabase: Nix's own commands inside the running container see
// exactly the image's closure, with its NAR hashes and references, as root
// and as the nixUid user; a modified file is reported, so the check can fail.
func TestImageNixDatabase(t *testing.T) {
	requireE2E(t)
	for _, tc := range []struct {
		name, extra, user string
		paths             int
	}{
		{"root", "", "0:0", 4},
		{"nixUid", "nixUid = 1000; nixGid = 100;", "1000:100", 4},
		// A path only an explicit layer holds is registered too.
		{"explicit layer", `layers = [ (ociTools.buildLayer { deps = [ (builtins.toFile "extra" "x") ]; }) ];`, "0:0", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := nixBuildImage(t, nixDBExpr(tc.extra))
			img := readImage(t, out)
			var closure []string
			for i, l := range img.storePaths() {
				// The store layers (the image's own and buildLayer's), not
				// the root layer nor the database's.
				if c := img.config.History[i].Comment; strings.HasPrefix(c, "store paths: ") || strings.HasPrefix(c, "buildLayer ") {
					closure = append(closure, l...)
				}
			}
			if c := img.config.History[len(img.config.History)-1].Comment; c != fmt.Sprintf("Nix database: %d store paths registered", tc.paths) {
				t.Errorf("top layer %q, want the Nix database of %d paths", c, tc.paths)
			}
			sort.Strings(closure)
			if len(closure) != tc.paths {
				t.Fatalf("closure %v, want %d paths (busybox, app, conf, data and the extra layer's)", closure, tc.paths)
			}
			podman := podmanCmd(t)
			ref := "oci:" + out + ":" + img.tag()
			stdout, stderr, err := nixInImage(t, podman, ref, tc.user, "/usr/bin/nix-store", "--verify", "--check-contents")
			if err != nil || strings.Contains(stderr, "error") || strings.Contains(stderr, "modified") {
				t.Fatalf("nix-store --verify --check-contents as %s: %v\n%s%s", tc.user, err, stdout, stderr)
			}
			// Every path valid, with the references the host's Nix registered.
			args := []string{"-c", `set -e; for p in "$@"; do echo "== $p"; /usr/bin/nix-store -q --references "$p"; done; echo "== all"; /usr/bin/nix-store -q --requisites "$1"`, "sh"}
			log, stderr, err := nixInImage(t, podman, ref, tc.user, "/usr/bin/sh", append(args, closure...)...)
			if err != nil {
				t.Fatalf("nix-store -q --references as %s: %v\n%s%s", tc.user, err, log, stderr)
			}
			var want strings.Builder
			for _, p := range closure {
				refs := hostNix(t, "-q", "--references", p)
				want.WriteString("== " + p + "\n" + refs)
			}
			want.WriteString("== all\n" + hostNix(t, "-q", "--requisites", closure[0]))
			if log != want.String() {
				t.Errorf("inside the image as %s:\n%s\nthe host's Nix:\n%s", tc.user, log, want.String())
			}
			if tc.user != "0:0" {
				// Single-user Nix: the user owns the store and adds to it.
				stdout, stderr, err := nixInImage(t, podman, ref, tc.user, "/usr/bin/nix-store", "--add", "/etc/ld.so.cache")
				if err != nil || !strings.HasPrefix(stdout, "/nix/store/") {
					t.Errorf("nix-store --add as %s: %v\n%s%s", tc.user, err, stdout, stderr)
				}
				return
			}
			// A modified file: --check-contents must say so and fail.
			data := closure[0]
			for _, p := range closure {
				if strings.HasSuffix(p, "-data") {
					data = p
				}
			}
			stdout, stderr, err = nixInImage(t, podman, ref, tc.user, "/usr/bin/sh", "-c", "echo tampered > "+data+"/share/msg && /usr/bin/nix-store --verify --check-contents")
			if log := stdout + stderr; err == nil || !strings.Contains(log, "path '"+data+"' was modified") {
				t.Errorf("a modified %s was not reported (err %v):\n%s", data, err, log)
			}
		})
	}
}

// hostNix runs the host's nix-store on the host's store and sorts its lines.
func hostNix(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("nix-store", args...).Output()
	if err != nil {
		t.Fatalf("nix-store %v: %v", args, err)
	}
	var b strings.Builder
	lines := strings.Fields(string(out))
	sort.Strings(lines)
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// buildContainer's initializeNixDatabase: Nix inside the bundle, run by
// `ocitools run` as root (its throwaway writable layer takes Nix's writes),
// verifies the closure and knows its references, in both store modes.
func TestContainerNixDatabase(t *testing.T) {
	requireE2E(t)
	for _, mode := range []string{"copy", "bind"} {
		t.Run(mode, func(t *testing.T) {
			bind := func(dst, src string) string {
				return `mounts."` + dst + `" = { type = "bind"; source = "` + src + `"; options = [ "rbind" "ro" ]; };`
			}
			expr := imageLet + `ociTools.buildContainer {
			  args = [ "${busybox}/bin/sh" "-c" "/usr/bin/nix-store --verify --check-contents && echo verified && /usr/bin/nix-store -q --references ${app}" ];
			  env = { USER = "root"; };
			  # Every directory of a Nix output is 0555: Nix, as root, writes
			  # to /nix/store and /nix/var/nix through this capability.
			  capabilities = [ "CAP_DAC_OVERRIDE" ];
			  initializeNixDatabase = true;
			  storeMode = "` + mode + `";
			  ` + bind("/usr", "/usr") + bind("/lib", "/usr/lib") + bind("/lib64", "/usr/lib64") + `
			}`
			bundle := nixBuild(t, expr)
			if _, log, err := nixBuildResult(t, expr, "--check"); err != nil {
				t.Fatalf("nix-build --check: the bundle with a Nix database is not reproducible: %v\n%s", err, log)
			}
			var app, data, busybox string
			for _, p := range strings.Fields(hostNix(t, "-q", "--requisites", bundle)) {
				switch {
				case strings.HasSuffix(p, "-app"):
					app = p
				case strings.HasSuffix(p, "-data"):
					data = p
				case strings.HasSuffix(p, "-busybox"):
					busybox = p
				}
			}
			if app == "" {
				t.Fatalf("the bundle %s does not refer to the app script", bundle)
			}
			cmd := exec.Command(ocitoolsBin, "run", bundle)
			cmd.Env = append(cmd.Environ(), "TMPDIR="+emptyTmp(t, 0, 0))
			res := runCmd(t, cmd)
			if want := "verified\n" + hostNix(t, "-q", "--references", app); res.code != 0 || res.stdout != want {
				t.Errorf("exit %d, stdout %q, stderr %s; want 0 and %q", res.code, res.stdout, res.stderr, want)
			}
			if mode == "copy" {
				// The bundle's own copy, modified in the throwaway layer: reported.
				cmd := exec.Command(ocitoolsBin, "run", bundle, "--", busybox+"/bin/sh", "-c", "echo tampered > "+data+"/share/msg && /usr/bin/nix-store --verify --check-contents")
				cmd.Env = append(cmd.Environ(), "TMPDIR="+emptyTmp(t, 0, 0))
				res := runCmd(t, cmd)
				if res.code == 0 || !strings.Contains(res.stderr, "path '"+data+"' was modified") {
					t.Errorf("a modified %s was not reported: exit %d, stderr %s", data, res.code, res.stderr)
				}
			}
			verifyStorePath(t, bundle)
		})
	}
}
