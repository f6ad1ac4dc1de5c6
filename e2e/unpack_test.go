package e2e

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/unpack/unpacktest"
)

// busyboxLayer is busybox in /bin (the binary and a link per applet) plus
// /etc/passwd and /etc/group.
func busyboxLayer(t *testing.T) unpacktest.Layer {
	t.Helper()
	bin := filepath.Join(busyboxDir, "bin")
	data, err := os.ReadFile(filepath.Join(bin, "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	es := []unpacktest.Entry{
		{Name: "bin/", Mode: 0o755},
		{Name: "bin/busybox", Body: string(data), Mode: 0o755},
		{Name: "etc/", Mode: 0o755},
		{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"},
		{Name: "etc/group", Body: "root:x:0:\napp:x:1000:\n"},
	}
	entries, err := os.ReadDir(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "busybox" {
			es = append(es, unpacktest.Entry{Name: "bin/" + e.Name(), Typeflag: tar.TypeSymlink, Linkname: "busybox"})
		}
	}
	return unpacktest.Layer{Compression: "gzip", Entries: es}
}

// whiteoutImage is busybox, a layer with files, and a layer that removes
// some of them with a whiteout and hides a directory with an opaque marker.
func whiteoutImage(t *testing.T, cmd ...string) unpacktest.Image {
	return unpacktest.Image{
		Tag: "latest",
		Layers: []unpacktest.Layer{
			busyboxLayer(t),
			{Compression: "gzip", Entries: []unpacktest.Entry{
				{Name: "data/", Mode: 0o755},
				{Name: "data/keep", Body: "keep\n"},
				{Name: "data/gone", Body: "gone\n"},
				{Name: "opaque/", Mode: 0o755},
				{Name: "opaque/old1", Body: "old\n"},
				{Name: "opaque/sub/", Mode: 0o700},
				{Name: "opaque/sub/old2", Body: "old\n"},
				{Name: "olddir/", Mode: 0o755},
				{Name: "olddir/x", Body: "x\n"},
			}},
			{Compression: "gzip", Entries: []unpacktest.Entry{
				{Name: "data/.wh.gone"},
				{Name: "opaque/", Mode: 0o750},
				{Name: "opaque/.wh..wh..opq"},
				{Name: "opaque/new", Body: "new\n", Mode: 0o600},
				{Name: ".wh.olddir"},
			}},
		},
		Config: ocispec.ImageConfig{
			Cmd:        cmd,
			Env:        []string{"PATH=/bin", "GREETING=hello from the image"},
			WorkingDir: "/data",
			StopSignal: "SIGTERM",
		},
	}
}

func writeLayout(t *testing.T, dir string, im unpacktest.Image) string {
	t.Helper()
	l, err := unpacktest.Write(dir, im)
	if err != nil {
		t.Fatal(err)
	}
	return l.Dir
}

// listTree is "path type mode [sha256|target]" for each entry, sorted, with
// the paths in skip left out.
func listTree(t *testing.T, root string, skip map[string]bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if skip[rel] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := rel + " " + fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			sum := sha256.Sum256(data)
			line += " " + hex.EncodeToString(sum[:8])
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// `ocitools unpack` of an image with a whiteout and an opaque directory gives
// the right tree, the same as umoci's, and a bundle `ocitools validate` takes.
func TestUnpackWhiteoutTree(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	layout := writeLayout(t, filepath.Join(dir, "layout"), whiteoutImage(t, "/bin/sh", "-c", "echo $GREETING; pwd; ls /data /opaque"))
	bundle := filepath.Join(dir, "bundle")
	out, err := exec.Command(ocitoolsBin, "unpack", layout+":latest", bundle).CombinedOutput()
	if err != nil {
		t.Fatalf("ocitools unpack: %v\n%s", err, out)
	}
	if out, err := exec.Command(ocitoolsBin, "validate", bundle).CombinedOutput(); err != nil {
		t.Fatalf("ocitools validate: %v\n%s", err, out)
	}
	rootfs := filepath.Join(bundle, "rootfs")
	for p, want := range map[string]bool{
		"data/keep": true, "data/gone": false, "opaque/new": true, "opaque/old1": false,
		"opaque/sub": false, "olddir": false, "bin/sh": true,
	} {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); (err == nil) != want {
			t.Errorf("/%s: exists %v, want %v", p, err == nil, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "opaque")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("/opaque: %v %v, want mode 0750 from the upper layer", fi, err)
	}

	// umoci applies the same layers to the same tree. The mount points and
	// the /tmp link ocitools adds for the runtime are not in the image.
	mustLookPath(t, "umoci")
	umociBundle := filepath.Join(dir, "umoci")
	if out, err := exec.Command("umoci", "unpack", "--image", layout+":latest", umociBundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	skip := map[string]bool{"dev": true, "proc": true, "sys": true, "tmp": true}
	got, want := listTree(t, rootfs, skip), listTree(t, filepath.Join(umociBundle, "rootfs"), skip)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ocitools and umoci unpack different trees:\nocitools:\n%s\numoci:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The bundle runs with runc as root.
	stdout, stderr, code := runcRun(t, bundle)
	if code != 0 || words(stdout) != "hello from the image /data /data: keep /opaque: new" {
		t.Errorf("runc run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// As the unprivileged test user: unpack makes a bundle of the user's own
// files, `ocitools run` runs it rootless, and `ocitools run IMAGE` does both
// in one step and leaves nothing behind. As root, `ocitools run IMAGE` too.
func TestUnpackRootless(t *testing.T) {
	u := unprivUser(t)
	dir := ownedDir(t, u.UID, u.GID)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	layout := writeLayout(t, filepath.Join(dir, "layout"), whiteoutImage(t, "/bin/sh", "-c", "id -u; cat /proc/self/uid_map; echo $GREETING; touch /data/new && ls /data"))
	bundle := filepath.Join(dir, "bundle")
	res := runCmd(t, u.Command(t, ocitoolsBin, "unpack", layout, bundle))
	if res.code != 0 {
		t.Fatalf("unpack as %s: exit %d\n%s", u.Name, res.code, res.stderr)
	}
	var owners []string
	filepath.WalkDir(filepath.Join(bundle, "rootfs"), func(p string, d fs.DirEntry, err error) error {
		if fi, err := os.Lstat(p); err == nil {
			if uid := fi.Sys().(*syscall.Stat_t).Uid; int(uid) != u.UID {
				owners = append(owners, p+" "+strconv.Itoa(int(uid)))
			}
		}
		return nil
	})
	if len(owners) > 0 {
		t.Errorf("files not owned by %s after a rootless unpack: %v", u.Name, owners)
	}
	// The same tree as root's, owners apart.
	rootBundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command(ocitoolsBin, "unpack", layout, rootBundle).CombinedOutput(); err != nil {
		t.Fatalf("unpack as root: %v\n%s", err, out)
	}
	if got, want := listTree(t, filepath.Join(bundle, "rootfs"), nil), listTree(t, filepath.Join(rootBundle, "rootfs"), nil); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("a rootless unpack differs from root's:\n%s\nroot's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	want := "0 0 " + strconv.Itoa(u.UID) + " 1 hello from the image keep new"
	res = runCmd(t, u.Command(t, ocitoolsBin, "run", bundle))
	if res.code != 0 || words(res.stdout) != want {
		t.Errorf("ocitools run (rootless): exit %d, stdout %q, want %q\nstderr: %s", res.code, res.stdout, want, res.stderr)
	}
	for _, r := range runners(t) {
		t.Run("run IMAGE as "+r.name, func(t *testing.T) {
			res := runCmd(t, r.cmd(t, "run", layout+":latest"))
			if res.code != 0 || !strings.HasSuffix(words(res.stdout), "hello from the image keep new") {
				t.Errorf("exit %d, stdout %q\nstderr: %s", res.code, res.stdout, res.stderr)
			}
			// run's own flags and ARGS after -- work with an image too.
			res = runCmd(t, r.cmd(t, "run", "--grace", "2s", "--no-terminal", layout, "--", "/bin/sh", "-c", "echo override $GREETING; exit 3"))
			if res.code != 3 || words(res.stdout) != "override hello from the image" {
				t.Errorf("with ARGS: exit %d, stdout %q\nstderr: %s", res.code, res.stdout, res.stderr)
			}
		})
	}
}

// A hostile image through the CLI: refused with the entry named, nothing left
// beside the bundle, the file outside untouched.
func TestUnpackHostileCLI(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "outside")
	if err := os.WriteFile(target, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	im := whiteoutImage(t, "/bin/true")
	im.Layers = append(im.Layers, unpacktest.Layer{Entries: []unpacktest.Entry{
		{Name: "link", Typeflag: tar.TypeSymlink, Linkname: dir},
		{Name: "link/outside", Body: "overwritten through a symlink"},
		{Name: "../../outside", Body: "overwritten through .."},
	}})
	layout := writeLayout(t, filepath.Join(dir, "layout"), im)
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	cmd := exec.Command(ocitoolsBin, "unpack", layout, filepath.Join(out, "bundle"))
	msg, err := cmd.CombinedOutput()
	if exitCode(t, err) != 1 || !strings.Contains(string(msg), `entry "../../outside"`) {
		t.Errorf("exit %v, output %s; want exit 1 naming the entry", err, msg)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if data, _ := os.ReadFile(target); string(data) != "untouched" {
		t.Errorf("the file outside was changed: %q", data)
	}
	// ocitools run IMAGE: refused before anything runs, its TMPDIR left empty.
	run := exec.Command(ocitoolsBin, "run", layout)
	run.Env = append(os.Environ(), "TMPDIR="+emptyTmp(t, 0, 0))
	msg, err = run.CombinedOutput()
	if exitCode(t, err) != 125 || !strings.Contains(string(msg), `entry "../../outside"`) {
		t.Errorf("run IMAGE: exit %v, output %s; want 125 naming the entry", err, msg)
	}
}

// The runtime configuration of an unpacked image has buildContainer's
// hardened defaults.
func TestUnpackConfigDefaults(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	layout := writeLayout(t, filepath.Join(dir, "layout"), whiteoutImage(t, "/bin/true"))
	bundle := filepath.Join(dir, "bundle")
	if out, err := exec.Command(ocitoolsBin, "unpack", layout, bundle).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if !s.Process.NoNewPrivileges || s.Process.Terminal || len(s.Linux.MaskedPaths) == 0 || s.Process.Cwd != "/data" ||
		s.Annotations["org.opencontainers.image.stopSignal"] != "SIGTERM" {
		t.Errorf("config.json lacks the defaults or the image's settings:\n%s", data)
	}
}

// words is s with all white space, newlines included, squeezed to one space.
func words(s string) string { return strings.Join(strings.Fields(s), " ") }

// A real buildImage image (layers per store path, from the Nix store) unpacks
// into a bundle that runs with runc as root and with `ocitools run` rootless,
// and `umoci unpack` of the same image gives the same tree.
func TestUnpackBuiltImage(t *testing.T) {
	u := unprivUser(t)
	image := nixBuild(t, `ociTools.buildImage {
  name = "unpack-e2e";
  tag = "t1";
  copyToRoot = [ busybox ];
  config = {
    Cmd = [ "${busybox}/bin/sh" "-c" "echo built image; id -u; ls /bin/sh" ];
    Env = [ "PATH=/bin" ];
    WorkingDir = "/work";
  };
}`)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	if out, err := exec.Command(ocitoolsBin, "unpack", image+":t1", bundle).CombinedOutput(); err != nil {
		t.Fatalf("ocitools unpack: %v\n%s", err, out)
	}
	stdout, stderr, code := runcRun(t, bundle)
	if code != 0 || words(stdout) != "built image 0 /bin/sh" {
		t.Errorf("runc run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	verifyStorePath(t, image)

	umociBundle := filepath.Join(dir, "umoci")
	if out, err := exec.Command("umoci", "unpack", "--image", image+":t1", umociBundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	skip := map[string]bool{"dev": true, "proc": true, "sys": true, "tmp": true, "work": true}
	got, want := listTree(t, filepath.Join(bundle, "rootfs"), skip), listTree(t, filepath.Join(umociBundle, "rootfs"), skip)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ocitools and umoci unpack different trees:\nocitools:\n%s\numoci:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	userDir := ownedDir(t, u.UID, u.GID)
	userBundle := filepath.Join(userDir, "bundle")
	res := runCmd(t, u.Command(t, ocitoolsBin, "unpack", image+":t1", userBundle))
	if res.code != 0 {
		t.Fatalf("unpack as %s: exit %d\n%s", u.Name, res.code, res.stderr)
	}
	res = runCmd(t, u.Command(t, ocitoolsBin, "run", userBundle))
	if res.code != 0 || words(res.stdout) != "built image 0 /bin/sh" {
		t.Errorf("ocitools run (rootless): exit %d, stdout %q\nstderr: %s", res.code, res.stdout, res.stderr)
	}
}

// SIGINT or SIGTERM in the middle of an unpack removes what it made: the
// temporary directory beside the bundle, and no bundle appears.
func TestUnpackInterrupted(t *testing.T) {
	requireE2E(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			im := whiteoutImage(t, "/bin/true")
			// 256 MiB of zeros: small compressed, a while to write.
			im.Layers = append(im.Layers, unpacktest.Layer{Compression: "gzip", Entries: []unpacktest.Entry{{Name: "big", Body: strings.Repeat("\x00", 256<<20)}}})
			layout := writeLayout(t, filepath.Join(dir, "layout"), im)
			out := filepath.Join(dir, "out")
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(ocitoolsBin, "unpack", "--max-bytes", strconv.Itoa(4<<30), layout, filepath.Join(out, "bundle"))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until the big file is being written.
			for i := 0; ; i++ {
				matches, _ := filepath.Glob(filepath.Join(out, ".bundle.unpack-*", "rootfs", "big"))
				if len(matches) > 0 {
					break
				}
				if i > 2000 {
					cmd.Process.Kill()
					t.Fatal("the unpack never started writing the big file")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if code := exitCode(t, err); code != 128+int(sig) || !strings.Contains(stderr.String(), "interrupted") {
				t.Errorf("exit %d, stderr %q; want %d and a message", code, stderr.String(), 128+int(sig))
			}
			if left, _ := os.ReadDir(out); len(left) != 0 {
				t.Errorf("left behind after %v: %v", sig, left)
			}
		})
	}
}

// `ocitools unpack REF BUNDLE` and `ocitools run REF` pull from a registry
// first (with the registry client pull uses), here from a local
// docker-registry that skopeo filled; no pulled layout is left behind.
func TestUnpackFromRegistry(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	layout := writeLayout(t, filepath.Join(dir, "layout"), whiteoutImage(t, "/bin/sh", "-c", "echo $GREETING; ls /data"))
	bundle := filepath.Join(dir, "bundle")
	out, err := exec.Command(ocitoolsBin, "unpack", "--plain-http", "127.0.0.1:1/none:latest", bundle).CombinedOutput()
	if exitCode(t, err) != 1 || !strings.Contains(string(out), "pulling 127.0.0.1:1/none:latest") {
		t.Errorf("unpack from an unreachable registry: exit %v, output %s; want exit 1 naming the reference", err, out)
	}
	if _, err := os.Lstat(bundle); !os.IsNotExist(err) {
		t.Errorf("unpack from an unreachable registry left %s (%v)", bundle, err)
	}
	mustLookPath(t, "skopeo")
	addr := startRegistry(t, registryOpts{}).addr
	ref := addr + "/unpack-e2e:latest"
	if out, err := exec.Command("skopeo", "copy", "--dest-tls-verify=false", "oci:"+layout+":latest", "docker://"+ref).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	if out, err := exec.Command(ocitoolsBin, "unpack", "--plain-http", ref, bundle).CombinedOutput(); err != nil {
		t.Fatalf("ocitools unpack %s: %v\n%s", ref, err, out)
	}
	stdout, stderr, code := runcRun(t, bundle)
	if code != 0 || words(stdout) != "hello from the image keep" {
		t.Errorf("runc run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".ocitools-pull-*")); len(left) != 0 {
		t.Errorf("the pulled layout was left behind: %v", left)
	}
	for _, r := range runners(t) {
		t.Run("run REF as "+r.name, func(t *testing.T) {
			res := runCmd(t, r.cmd(t, "run", "--plain-http", ref))
			if res.code != 0 || words(res.stdout) != "hello from the image keep" {
				t.Errorf("exit %d, stdout %q\nstderr: %s", res.code, res.stdout, res.stderr)
			}
		})
	}
}

// An image whose config names a user by name: resolved in the image's
// /etc/passwd, and the container runs as that user, with runc as root and
// with `ocitools run` rootless (through the caller's subordinate ids).
func TestUnpackImageUser(t *testing.T) {
	u := unprivUser(t)
	ensureSubIDs(t, u)
	mustLookPath(t, "newuidmap")
	dir := ownedDir(t, u.UID, u.GID)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	im := whiteoutImage(t, "/bin/sh", "-c", "id -u; id -g; cat /data/keep")
	im.Config.User = "app"
	layout := writeLayout(t, filepath.Join(dir, "layout"), im)

	rootBundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command(ocitoolsBin, "unpack", layout, rootBundle).CombinedOutput(); err != nil {
		t.Fatalf("unpack: %v\n%s", err, out)
	}
	stdout, stderr, code := runcRun(t, rootBundle)
	if code != 0 || words(stdout) != "1000 1000 keep" {
		t.Errorf("runc run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	bundle := filepath.Join(dir, "bundle")
	if res := runCmd(t, u.Command(t, ocitoolsBin, "unpack", layout, bundle)); res.code != 0 {
		t.Fatalf("unpack as %s: exit %d\n%s", u.Name, res.code, res.stderr)
	}
	res := runCmd(t, u.Command(t, ocitoolsBin, "run", bundle))
	if res.code != 0 || words(res.stdout) != "1000 1000 keep" {
		t.Errorf("ocitools run (rootless): exit %d, stdout %q\nstderr: %s", res.code, res.stdout, res.stderr)
	}
}

// Root in a user namespace that maps only itself (a container, a CI sandbox)
// cannot give files the image's other owners: they stay root's, listed.
func TestUnpackRootInUserNamespace(t *testing.T) {
	requireE2E(t)
	mustLookPath(t, "unshare")
	dir := t.TempDir()
	im := whiteoutImage(t, "/bin/true")
	im.Layers = append(im.Layers, unpacktest.Layer{Entries: []unpacktest.Entry{
		{Name: "home/", Mode: 0o755}, {Name: "home/app/", Mode: 0o700, UID: 1000, GID: 1000}, {Name: "home/app/f", Body: "f", UID: 1000, GID: 1000},
	}})
	layout := writeLayout(t, filepath.Join(dir, "layout"), im)
	bundle := filepath.Join(dir, "bundle")
	out, err := exec.Command("unshare", "--user", "--map-root-user", ocitoolsBin, "unpack", layout, bundle).CombinedOutput()
	if err != nil {
		t.Fatalf("unpack in a user namespace: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "skipped owner (an id this user namespace does not map): 2 entries (/home/app/f, /home/app)") {
		t.Errorf("output does not list the owners left out:\n%s", out)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(bundle, "rootfs/home/app/f"), &st); err != nil || st.Uid != 0 {
		t.Errorf("home/app/f: %v, owner %d", err, st.Uid)
	}
}

// A buildImage image with zstd layers (which umoci 0.4.7 cannot read) unpacks
// and runs.
func TestUnpackBuiltImageZstd(t *testing.T) {
	image := nixBuild(t, `ociTools.buildImage {
  name = "unpack-e2e-zstd";
  tag = "z";
  compression = "zstd";
  copyToRoot = [ busybox ];
  config.Cmd = [ "/bin/sh" "-c" "echo zstd image" ];
  config.Env = [ "PATH=/bin" ];
}`)
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command(ocitoolsBin, "unpack", image, bundle).CombinedOutput(); err != nil {
		t.Fatalf("ocitools unpack: %v\n%s", err, out)
	}
	stdout, stderr, code := runcRun(t, bundle)
	if code != 0 || words(stdout) != "zstd image" {
		t.Errorf("runc run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	verifyStorePath(t, image)
}

// A multi-platform index: this machine's image is the one unpacked and run;
// --platform chooses another.
func TestUnpackMultiPlatform(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	l, err := unpacktest.NewLayout(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	var ds []ocispec.Descriptor
	for _, arch := range []string{"arm64", "amd64", "riscv64"} {
		im := whiteoutImage(t, "/bin/sh", "-c", "cat /arch")
		im.Arch = arch
		im.Layers = append(im.Layers, unpacktest.Layer{Entries: []unpacktest.Entry{{Name: "arch", Body: arch + "\n"}}})
		d, err := l.WriteImage(im)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	if err := l.AddIndex("multi", ds); err != nil {
		t.Fatal(err)
	}
	res := runCmd(t, exec.Command(ocitoolsBin, "run", l.Dir+":multi"))
	if res.code != 0 || words(res.stdout) != runtime.GOARCH {
		t.Errorf("run: exit %d, stdout %q, want %s\nstderr: %s", res.code, res.stdout, runtime.GOARCH, res.stderr)
	}
	bundle := filepath.Join(dir, "riscv")
	if out, err := exec.Command(ocitoolsBin, "unpack", "--platform", "linux/riscv64", l.Dir+":multi", bundle).CombinedOutput(); err != nil {
		t.Fatalf("unpack --platform linux/riscv64: %v\n%s", err, out)
	}
	if data, _ := os.ReadFile(filepath.Join(bundle, "rootfs", "arch")); string(data) != "riscv64\n" {
		t.Errorf("--platform linux/riscv64 unpacked the %q image", data)
	}
	out, err := exec.Command(ocitoolsBin, "unpack", "--platform", "linux/s390x", l.Dir+":multi", filepath.Join(dir, "none")).CombinedOutput()
	if exitCode(t, err) != 1 || !strings.Contains(string(out), "no image for platform linux/s390x (it has linux/arm64, linux/amd64, linux/riscv64)") {
		t.Errorf("a missing platform: exit %v, output %s", err, out)
	}
}
