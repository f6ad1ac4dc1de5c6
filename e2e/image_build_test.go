package e2e

import (
	"encoding/json"
	mathrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// nixBuildImage builds a buildImage (or buildLayer) expression in the sandbox
// and holds it to what issue 10 asks of every image: nix-build --check
// reproduces it bit for bit, ocitools validate accepts the layout, and the
// store path is what Nix registered.
func nixBuildImage(t *testing.T, expr string) string {
	t.Helper()
	out := nixBuild(t, expr)
	if _, log, err := nixBuildResult(t, expr, "--check"); err != nil {
		t.Fatalf("nix-build --check: %s is not reproducible: %v\n%s", out, err, log)
	}
	if _, err := os.Stat(filepath.Join(out, "oci-layout")); err == nil {
		if msg, err := exec.Command(ocitoolsBin, "validate", out).CombinedOutput(); err != nil {
			t.Fatalf("ocitools validate %s: %v\n%s", out, err, msg)
		}
	}
	verifyStorePath(t, out)
	return out
}

type imageLayout struct {
	dir      string
	index    v1.Index
	manifest v1.Manifest
	config   v1.Image
}

func readImage(t *testing.T, dir string) *imageLayout {
	t.Helper()
	l := &imageLayout{dir: dir}
	readJSONFile(t, filepath.Join(dir, "index.json"), &l.index)
	if len(l.index.Manifests) != 1 {
		t.Fatalf("%s: %d manifests in index.json, want 1", dir, len(l.index.Manifests))
	}
	readJSONFile(t, l.blob(l.index.Manifests[0].Digest.Encoded()), &l.manifest)
	readJSONFile(t, l.blob(l.manifest.Config.Digest.Encoded()), &l.config)
	return l
}

func (l *imageLayout) blob(hex string) string { return filepath.Join(l.dir, "blobs", "sha256", hex) }

func (l *imageLayout) tag() string {
	return l.index.Manifests[0].Annotations[v1.AnnotationRefName]
}

// storePaths lists, per layer, the store paths its history entry names
// (the root layer of synthesized entries, always last, is left out).
func (l *imageLayout) storePaths() [][]string {
	var out [][]string
	for _, h := range l.config.History {
		if strings.HasPrefix(h.Comment, "root:") {
			continue
		}
		_, list, _ := strings.Cut(h.Comment, ": ")
		out = append(out, strings.Fields(list))
	}
	return out
}

func readJSONFile(t *testing.T, f string, v any) {
	t.Helper()
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", f, err)
	}
}

// imageLet defines, for the expressions below, a small application: a
// script (referring to busybox), a data directory and a config file.
const imageLet = `let
  data = runCommand "data" { } "mkdir -p $out/share; echo data > $out/share/msg";
  conf = builtins.toFile "app.conf" "greeting=hi";
  app = writeScript "app" "#!${busybox}/bin/sh\ncat ${data}/share/msg ${conf}";
in `

// One layer per store path, most shared first; every store path the config
// names is in the image; the default tag is derived from the inputs.
func TestImageLayerPerStorePath(t *testing.T) {
	out := nixBuildImage(t, imageLet+`ociTools.buildImage {
	  name = "e2e/app";
	  config = {
	    Entrypoint = [ app ];
	    Cmd = [ "--conf=${conf}" ];
	    Env = { GREETING = "hi"; DATA = "${data}/share"; };
	    ExposedPorts = [ "8080/tcp" ];
	    Labels."org.example" = "yes";
	    WorkingDir = "/";
	    User = "1000:100";
	    StopSignal = "SIGINT";
	    Volumes = [ "/data" ];
	  };
	}`)
	img := readImage(t, out)
	paths := img.storePaths()
	if len(img.manifest.Layers) != 5 || len(paths) != 4 {
		t.Fatalf("%d layers (%v), want 5: busybox, app, conf, data and the root layer", len(img.manifest.Layers), paths)
	}
	// busybox, data and the config file are each used by the script (ties
	// broken by name); the script, used by nothing, is the top layer.
	for i, name := range []string{"app.conf", "busybox", "data", "app"} {
		if len(paths[i]) != 1 || !strings.HasSuffix(paths[i][0], "-"+name) {
			t.Errorf("layer %d holds %v, want %s alone (layers: %v)", i, paths[i], name, paths)
		}
	}
	c := img.config.Config
	if c.User != "1000:100" || c.StopSignal != "SIGINT" || c.Labels["org.example"] != "yes" || len(c.Env) != 2 || !strings.HasPrefix(c.Env[0], "DATA=/nix/store/") {
		t.Errorf("config %+v", c)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ExposedPorts %v", c.ExposedPorts)
	}
	if tag := img.tag(); len(tag) != 32 || tag == "latest" {
		t.Errorf("derived tag %q, want 32 characters of a hash", tag)
	}
	if img.config.Architecture != "amd64" || img.config.OS != "linux" || img.config.Created.Unix() != 1 {
		t.Errorf("platform %s/%s created %v", img.config.OS, img.config.Architecture, img.config.Created)
	}
	for i, l := range img.manifest.Layers {
		if l.MediaType != v1.MediaTypeImageLayerGzip {
			t.Errorf("layer %d: %s, want gzip by default", i, l.MediaType)
		}
	}
}

// The derived tag is the same for the same inputs and changes with them; a
// given tag is used as it is; the result carries imageName and imageTag.
func TestImageTag(t *testing.T) {
	tagOf := func(expr string) string {
		out, err := exec.Command("nix-instantiate", "--eval", "--strict", nixFile(t, expr)).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return strings.Trim(strings.TrimSpace(string(out)), `"`)
	}
	a := tagOf(`(ociTools.buildImage { name = "x"; config.Cmd = [ "${busybox}/bin/sh" ]; }).imageTag`)
	b := tagOf(`(ociTools.buildImage { name = "x"; config.Cmd = [ "${busybox}/bin/sh" ]; }).imageTag`)
	c := tagOf(`(ociTools.buildImage { name = "x"; config.Cmd = [ "${busybox}/bin/ls" ]; }).imageTag`)
	if a != b || a == c || len(a) != 32 {
		t.Errorf("derived tags %q %q %q: want equal for equal inputs, different otherwise", a, b, c)
	}
	if got := tagOf(`(ociTools.buildImage { name = "x"; tag = "v1.0"; config.Cmd = [ "${busybox}/bin/sh" ]; }).imageTag`); got != "v1.0" {
		t.Errorf("given tag came back as %q", got)
	}
	out := nixBuildImage(t, `ociTools.buildImage { name = "x"; tag = "v1.0"; config.Cmd = [ "${busybox}/bin/sh" ]; }`)
	if got := readImage(t, out).tag(); got != "v1.0" {
		t.Errorf("index.json tag %q", got)
	}
}

// Each compression gives its media type, a valid layout and a reproducible build.
func TestImageCompressions(t *testing.T) {
	for comp, mt := range map[string]string{"gzip": v1.MediaTypeImageLayerGzip, "zstd": v1.MediaTypeImageLayerZstd, "none": v1.MediaTypeImageLayer} {
		t.Run(comp, func(t *testing.T) {
			out := nixBuildImage(t, imageLet+`ociTools.buildImage { name = "c"; compression = "`+comp+`"; config.Entrypoint = [ app ]; }`)
			for i, l := range readImage(t, out).manifest.Layers {
				if l.MediaType != mt {
					t.Errorf("layer %d: %s, want %s", i, l.MediaType, mt)
				}
			}
		})
	}
}

// maxLayers merges the least shared paths into the last store layer (the
// root layer counts as one).
func TestImageMaxLayers(t *testing.T) {
	out := nixBuildImage(t, imageLet+`ociTools.buildImage { name = "m"; maxLayers = 3; config.Entrypoint = [ app ]; }`)
	paths := readImage(t, out).storePaths()
	if len(paths) != 2 || len(paths[0]) != 1 || len(paths[1]) != 3 {
		t.Errorf("layers %v, want app.conf then the three others together", paths)
	}
}

// An explicit layer is built once and copied as it is into each image that
// lists it; its paths are left out of the automatic layers; copyToRoot gets
// its own layer.
func TestImageExplicitLayersShared(t *testing.T) {
	layerExpr := `ociTools.buildLayer { deps = [ busybox ]; }`
	layerOut := nixBuildImage(t, layerExpr)
	var info struct {
		Digest string   `json:"digest"`
		DiffID string   `json:"diffID"`
		Paths  []string `json:"paths"`
	}
	readJSONFile(t, filepath.Join(layerOut, "layer.json"), &info)
	if len(info.Paths) != 1 || !strings.HasSuffix(info.Paths[0], "-busybox") {
		t.Fatalf("layer holds %v", info.Paths)
	}
	for _, app := range []string{"one", "two"} {
		expr := imageLet + `let base = ` + layerExpr + `; other = writeScript "` + app + `" "#!${busybox}/bin/sh\necho ` + app + `"; in
		ociTools.buildImage { name = "` + app + `"; layers = [ base ]; copyToRoot = [ busybox ]; config.Entrypoint = [ other ]; }`
		img := readImage(t, nixBuildImage(t, expr))
		paths := img.storePaths()
		if len(img.manifest.Layers) != 3 {
			t.Fatalf("%s: layers %v, want the shared layer, the app, copyToRoot", app, paths)
		}
		if string(img.manifest.Layers[0].Digest) != info.Digest || string(img.config.RootFS.DiffIDs[0]) != info.DiffID {
			t.Errorf("%s: first layer %s, want the shared layer %s", app, img.manifest.Layers[0].Digest, info.Digest)
		}
		// No second copy: the blob is a link to the layer's own file.
		blob := filepath.Join(img.dir, "blobs", "sha256", strings.TrimPrefix(info.Digest, "sha256:"))
		if target, err := os.Readlink(blob); err != nil || target != filepath.Join(layerOut, "blob") {
			t.Errorf("%s: blob %s links to %q (%v), want %s/blob", app, blob, target, err, layerOut)
		}
		if len(paths[1]) != 1 || !strings.HasSuffix(paths[1][0], "-"+app) {
			t.Errorf("%s: automatic layer holds %v, want only the app (busybox is in the explicit layer)", app, paths[1])
		}
		if !strings.HasPrefix(img.config.History[2].Comment, "root: copyToRoot (copy) ") {
			t.Errorf("%s: last layer %q, want copyToRoot", app, img.config.History[2].Comment)
		}
	}
}

// perms are applied in the tar: the layout records them (validate reads the
// layers; a wrong mode on the entrypoint would fail it).
func TestImagePerms(t *testing.T) {
	out := nixBuildImage(t, imageLet+`ociTools.buildImage {
	  name = "p";
	  config.Entrypoint = [ app ];
	  perms = [ { path = "${data}/share/msg"; mode = "0600"; uid = 1000; gid = 100; } ];
	}`)
	listing, err := exec.Command("sh", "-c", "for f in "+out+"/blobs/sha256/*; do tar -tvzf $f 2>/dev/null || true; done").Output()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(listing), "\n") {
		if strings.HasSuffix(line, "-data/share/msg") {
			found = true
			if !strings.HasPrefix(line, "-rw------- 1000/100 ") {
				t.Errorf("perms not applied: %s", line)
			}
		} else if strings.Contains(line, "nix/store") && !strings.Contains(line, " 0/0 ") {
			t.Errorf("owner not 0/0: %s", line)
		}
	}
	if !found {
		t.Errorf("no layer lists share/msg:\n%s", listing)
	}
}

// Bad input fails at evaluation with a message naming the argument.
func TestImageBadInputAtEvaluation(t *testing.T) {
	sh := `[ "${busybox}/bin/sh" ]`
	for _, tc := range []struct{ name, expr, want string }{
		{"config key spelling", `ociTools.buildImage { name = "x"; config.entrypoint = ` + sh + `; }`, "buildImage: `config`: unknown attribute `entrypoint` (did you mean \"Entrypoint\"?)"},
		{"config workdir", `ociTools.buildImage { name = "x"; config.workdir = "/"; }`, "did you mean \"WorkingDir\"?"},
		{"config value", `ociTools.buildImage { name = "x"; config.Cmd = "sh"; }`, "buildImage: `config`: `Cmd` must be a list, not the string \"sh\""},
		{"name missing", `ociTools.buildImage { config.Cmd = ` + sh + `; }`, "buildImage: `name` is required"},
		{"bad name", `ociTools.buildImage { name = "My App"; }`, "buildImage: `name` must be an image name: path components of lower-case letters"},
		{"bad tag", `ociTools.buildImage { name = "x"; tag = "-v1"; }`, "buildImage: `tag` must be a tag: 1 to 128 letters"},
		{"maxLayers too small", `ociTools.buildImage { name = "x"; maxLayers = 0; }`, "buildImage: `maxLayers` must be between 1 and 125"},
		{"maxLayers too large", `ociTools.buildImage { name = "x"; maxLayers = 500; }`, "buildImage: `maxLayers` must be between 1 and 125"},
		{"compression", `ociTools.buildImage { name = "x"; compression = "xz"; }`, "buildImage: `compression`: unknown value \"xz\"; valid values are \"gzip\", \"zstd\", \"none\""},
		{"layers element", `ociTools.buildImage { name = "x"; layers = [ busybox ]; }`, "buildImage: `layers`: element 0 is the string \"/nix/store/"},
		{"layer listed twice", `let l = ociTools.buildLayer { deps = [ busybox ]; }; in ociTools.buildImage { name = "x"; layers = [ l l ]; }`, "buildImage: `layers`: element 1 is the same as an earlier one"},
		{"maxLayers below the explicit layers", `let l = ociTools.buildLayer { deps = [ busybox ]; }; in ociTools.buildImage { name = "x"; layers = [ l ]; copyToRoot = [ busybox ]; maxLayers = 1; }`, "buildImage: `maxLayers` is 1, but the 1 explicit `layers` and the root layer (copyToRoot, users, dirs, /tmp) alone make 2 layers"},
		{"perms mode", `ociTools.buildImage { name = "x"; perms = [ { path = "/x"; mode = 0755; } ]; }`, "`perms`: element 0: `mode` must be an octal string such as \"0755\""},
		{"perms relative", `ociTools.buildImage { name = "x"; perms = [ { path = "x"; } ]; }`, "`perms`: element 0: `path` must be an absolute path in the image"},
		{"created", `ociTools.buildImage { name = "x"; created = "yesterday"; }`, "buildImage: `created` must be an RFC 3339 time"},
		{"created now", `ociTools.buildImage { name = "x"; created = "now"; }`, "buildImage: `created`: \"now\" is not supported: the image would differ on every build"},
		{"uid 0 not root", `ociTools.buildImage { name = "x"; users = [ { name = "admin"; uid = 0; } ]; }`, "buildImage: `users` element 0 (admin): uid 0 is root's; a user with uid 0 must be named root"},
		{"duplicate uids", `ociTools.buildImage { name = "x"; users = { a.uid = 5; b.uid = 5; }; }`, "buildImage: `users` element 1 (b): uid 5 is also a's; uids must be distinct"},
		{"home not absolute", `ociTools.buildImage { name = "x"; users = [ { name = "a"; uid = 5; home = "home/a"; } ]; }`, "buildImage: `users`: element 0: `home` must be a clean absolute path"},
		{"config.User unknown", `ociTools.buildImage { name = "x"; users = [ { name = "app"; uid = 1000; } ]; config.User = "ap"; }`, "buildImage: `config`: User \"ap\": \"ap\" is not a user of the image; known users are app, root, nobody"},
		{"perms unknown user", `ociTools.buildImage { name = "x"; users = [ { name = "app"; uid = 1000; } ]; perms = [ { path = "${busybox}"; uid = "ap"; } ]; }`, "buildImage: `perms` element 0: uid \"ap\" is not a user of the image; known users are app, root, nobody"},
		{"dirs unknown group", `ociTools.buildImage { name = "x"; dirs = [ { path = "/data"; gid = "data"; } ]; }`, "buildImage: `dirs` element 0: gid \"data\" is not a group of the image"},
		{"users unknown group", `ociTools.buildImage { name = "x"; users = [ { name = "app"; uid = 1000; groups = [ "wheel" ]; } ]; }`, "buildImage: `users` app: group \"wheel\" is not a group of the image"},
		{"dirs in the store", `ociTools.buildImage { name = "x"; dirs = [ "/nix/store/x" ]; }`, "buildImage: `dirs` element 0: /nix/store/x is in the Nix store"},
		{"perms regex and glob", `ociTools.buildImage { name = "x"; perms = [ { regex = "/a"; glob = "/b"; } ]; }`, "buildImage: `perms` element 0: give regex or glob, not both"},
		{"files two kinds", `ociTools.buildImage { name = "x"; files = [ { path = "/a"; text = "x"; symlink = "/b"; } ]; }`, "give exactly one of text, source or symlink"},
		{"copyToRootMode", `ociTools.buildImage { name = "x"; copyToRootMode = "links"; }`, "buildImage: `copyToRootMode`: unknown value \"links\"; valid values are \"copy\", \"symlink\""},
		{"runAsRoot", `ociTools.buildImage { name = "x"; runAsRoot = "chown 1000 /data"; }`, "buildImage: `runAsRoot` is not supported: it runs a script as root in a VM. Give users with `users`"},
		{"fakeRootCommands", `ociTools.buildImage { name = "x"; fakeRootCommands = ""; }`, "buildImage: `fakeRootCommands` is not supported"},
		{"extraCommands", `ociTools.buildImage { name = "x"; extraCommands = ""; }`, "buildImage: `extraCommands` is not supported"},
		{"enableFakechroot", `ociTools.buildImage { name = "x"; enableFakechroot = true; }`, "buildImage: `enableFakechroot` is not supported"},
		{"contents and copyToRoot", `ociTools.buildImage { name = "x"; contents = [ busybox ]; copyToRoot = [ busybox ]; }`, "buildImage: `contents` (dockerTools' name) and `copyToRoot` are the same argument"},
		{"compressor", `ociTools.buildImage { name = "x"; compressor = "xz"; }`, "buildImage: `compressor`: unknown value \"xz\""},
		{"arch", `ociTools.buildImage { name = "x"; arch = "sparc"; }`, "buildImage: `arch`: unknown value \"sparc\""},
		{"unknown argument", `ociTools.buildImage { name = "x"; maxlayers = 3; }`, "buildImage: unknown argument `maxlayers` (did you mean \"maxLayers\"?)"},
		{"buildLayer deps", `ociTools.buildLayer { }`, "buildLayer: `deps` is required"},
		{"initializeNixDatabase", `ociTools.buildImage { name = "x"; initializeNixDatabase = "yes"; }`, "buildImage: `initializeNixDatabase` must be a boolean"},
		{"nixUid without a database", `ociTools.buildImage { name = "x"; nixUid = 1000; }`, "they need `initializeNixDatabase = true`"},
		{"nixGid negative", `ociTools.buildImage { name = "x"; initializeNixDatabase = true; nixGid = -1; }`, "buildImage: `nixGid` must be at least 0, not -1"},
		{"nixUid with explicit layers", `let l = ociTools.buildLayer { deps = [ busybox ]; }; in ociTools.buildImage { name = "x"; layers = [ l ]; initializeNixDatabase = true; nixUid = 1; }`, "the explicit `layers` are built owned by 0:0"},
		{"maxLayers below the database layer", `let l = ociTools.buildLayer { deps = [ busybox ]; }; in ociTools.buildImage { name = "x"; layers = [ l ]; initializeNixDatabase = true; maxLayers = 1; }`, "the 1 explicit `layers` and the root layer (copyToRoot, users, dirs, /tmp) and the Nix database layer alone make 3 layers"},
		{"layering strategy", `ociTools.buildImage { name = "x"; layering = "largest"; }`, "buildImage: `layering`: unknown value \"largest\"; valid values are \"popularity\", \"auto\", \"auto-derivations\""},
		{"layering group", `ociTools.buildImage { name = "x"; layering = [ [ busybox ] busybox ]; }`, "buildImage: `layering`: element 1 must be a list, not the string"},
		{"stream", `ociTools.buildImage { name = "x"; stream = "yes"; }`, "buildImage: `stream` must be a boolean"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := nixBuildFail(t, tc.expr)
			if !strings.Contains(log, tc.want) {
				t.Errorf("log lacks %q:\n%s", tc.want, log)
			}
		})
	}
}

// What evaluation cannot know, the builder refuses, and nothing survives.
func TestImageBuilderErrors(t *testing.T) {
	for _, tc := range []struct{ name, expr, want string }{
		{"copyToRoot conflict names both",
			`let other = runCommand "other" { } "mkdir -p $out/bin; echo x > $out/bin/sh"; in
			ociTools.buildImage { name = "x"; copyToRoot = [ busybox other ]; config.Cmd = [ "/bin/sh" ]; }`,
			"-busybox/bin/sh and /nix/store/"},
		{"perms for a path not in the image",
			`let other = runCommand "other" { } "mkdir $out"; in
			ociTools.buildImage { name = "x"; config.Cmd = [ "${busybox}/bin/sh" ]; perms = [ { path = "${other}"; mode = "0700"; } ]; }`,
			"`perms`: /nix/store/"},
		{"entrypoint not in the image",
			`ociTools.buildImage { name = "x"; config.Cmd = [ "/bin/sh" ]; config.Env = [ "BB=${busybox}" ]; }`,
			"the program /bin/sh is not in the image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := nixBuildFail(t, tc.expr)
			if !strings.Contains(log, tc.want) {
				t.Errorf("log lacks %q:\n%s", tc.want, log)
			}
			wantNoOutput(t, tc.expr)
		})
	}
}

// Outside Nix: --attrs and --out; the layout appears complete, and a failure
// leaves nothing.
func TestBuildImageOutsideNix(t *testing.T) {
	requireE2E(t)
	bb := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--add", busyboxDir)))
	hash := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--query", "--hash", bb)))
	dir := t.TempDir()
	write := func(name, image string) string {
		f := filepath.Join(dir, name)
		attrs := `{"closure":[{"path":"` + bb + `","narHash":"` + hash + `","narSize":1,"references":[]}],"image":` + image + `}`
		if err := os.WriteFile(f, []byte(attrs), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	out := filepath.Join(dir, "out")
	good := write("good.json", `{"name":"x","tag":"t","config":{"Entrypoint":["`+bb+`/bin/sh"]},"compression":"zstd","arch":"x86_64"}`)
	if msg, err := exec.Command(ocitoolsBin, "build-image", "--attrs", good, "--out", out).CombinedOutput(); err != nil {
		t.Fatalf("build-image: %v\n%s", err, msg)
	}
	if msg, err := exec.Command(ocitoolsBin, "validate", out).CombinedOutput(); err != nil {
		t.Errorf("validate: %v\n%s", err, msg)
	}
	if img := readImage(t, out); img.tag() != "t" || len(img.manifest.Layers) != 2 { // busybox and the root layer
		t.Errorf("tag %q, %d layers", img.tag(), len(img.manifest.Layers))
	}
	if msg, err := exec.Command(ocitoolsBin, "build-image", "--attrs", good, "--out", out).CombinedOutput(); err == nil || !strings.Contains(string(msg), "already exists") {
		t.Errorf("a second build into %s: %v\n%s", out, err, msg)
	}
	// The same layout at any parallelism (the compressors cut their input
	// into fixed blocks and frames, whatever the number of cores), on a path
	// big enough for many gzip blocks and zstd frames.
	bigDir := filepath.Join(t.TempDir(), "big")
	if err := os.MkdirAll(bigDir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := mathrand.New(mathrand.NewSource(10))
	words := []string{"layer ", "store ", "nix ", "image ", "\n", "0123 "}
	var sb strings.Builder
	for sb.Len() < 24<<20 {
		sb.WriteString(words[rng.Intn(len(words))])
	}
	if err := os.WriteFile(filepath.Join(bigDir, "data"), []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	big := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--add", bigDir)))
	bigHash := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--query", "--hash", big)))
	for _, comp := range []string{"gzip", "zstd"} {
		f := filepath.Join(dir, comp+".attrs")
		attrs := `{"closure":[{"path":"` + big + `","narHash":"` + bigHash + `","narSize":1,"references":[]}],"image":{"name":"big","tag":"t","compression":"` + comp + `","config":{"Env":["BIG=` + big + `"]}}}`
		if err := os.WriteFile(f, []byte(attrs), 0o644); err != nil {
			t.Fatal(err)
		}
		var first string
		for _, procs := range []string{"1", "2", "5"} {
			o := filepath.Join(t.TempDir(), "p"+procs)
			cmd := exec.Command(ocitoolsBin, "build-image", "--attrs", f, "--out", o)
			cmd.Env = append(os.Environ(), "GOMAXPROCS="+procs)
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOMAXPROCS=%s build-image: %v\n%s", procs, err, msg)
			}
			if first == "" {
				first = o
				continue
			}
			if msg, err := exec.Command("diff", "-r", first, o).CombinedOutput(); err != nil {
				t.Errorf("%s: GOMAXPROCS=%s gives another layout than GOMAXPROCS=1: %v\n%s", comp, procs, err, msg)
			}
		}
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	bad := write("bad.json", `{"name":"x","tag":"t","config":{"Entrypoint":["`+bb+`/bin/nope"]}}`)
	out2 := filepath.Join(dir, "out2")
	msg, err := exec.Command(ocitoolsBin, "build-image", "--attrs", bad, "--out", out2).CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "/bin/nope is not in the image") {
		t.Errorf("missing entrypoint: %v\n%s", err, msg)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 { // good.json, bad.json, out
		t.Errorf("the failed build left something: %v", entries)
	}
}

// ocitools validate finds what was changed in a copy of a built image: a
// flipped byte in a layer, and a config whose diff_id lies.
func TestValidateTamperedImage(t *testing.T) {
	out := nixBuildImage(t, imageLet+`ociTools.buildImage { name = "v"; config.Entrypoint = [ app ]; }`)
	for _, tc := range []struct {
		name   string
		tamper func(l *imageLayout)
		want   string
	}{
		{"layer byte", func(l *imageLayout) {
			p := l.blob(l.manifest.Layers[0].Digest.Encoded())
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 1
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "the blob's content has digest"},
		{"missing blob", func(l *imageLayout) {
			if err := os.Remove(l.blob(l.manifest.Layers[1].Digest.Encoded())); err != nil {
				t.Fatal(err)
			}
		}, "is missing from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "copy")
			if err := exec.Command("cp", "-r", out, dir).Run(); err != nil {
				t.Fatal(err)
			}
			if err := exec.Command("chmod", "-R", "u+w", dir).Run(); err != nil {
				t.Fatal(err)
			}
			tc.tamper(readImage(t, dir))
			msg, err := exec.Command(ocitoolsBin, "validate", dir).CombinedOutput()
			if code := exitCode(t, err); code != 1 || !strings.Contains(string(msg), tc.want) {
				t.Errorf("validate exited %d:\n%s\nwant exit 1 and %q", code, msg, tc.want)
			}
		})
	}
}

// SIGINT during build-image --out removes the partial layout: nothing is left
// beside --out, and the exit status says which signal.
func TestBuildImageInterrupted(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	attrs := noiseAttrs(t, dir)
	cmd, stderr := startPartialBuildImage(t, attrs, dir)
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := exitCode(t, err); code != 130 || !strings.Contains(stderr.String(), "the partial output was removed") {
		t.Fatalf("exit %d after %v, want 130 (interrupted; if 0, the build finished before the signal)\n%s", code, time.Since(start), stderr.String())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

// What SIGKILL leaves of build-image (the partial layout and its lock) is
// reclaimed by the next build-image into the same directory, as build's is:
// both use one partial-output helper (cmd/ocitools buildIntoPlace).
func TestBuildImageKilledReclaimed(t *testing.T) {
	requireE2E(t)
	dir := t.TempDir()
	attrs := noiseAttrs(t, dir)
	cmd, _ := startPartialBuildImage(t, attrs, dir)
	must(t, cmd.Process.Kill())
	_ = cmd.Wait()
	left, _ := filepath.Glob(filepath.Join(dir, ".out.partial-*"))
	if len(left) != 2 { // the partial layout and its lock
		t.Fatalf("SIGKILL left %v, want the partial layout and its lock: the test checks nothing", left)
	}
	small := filepath.Join(t.TempDir(), "small")
	must(t, os.MkdirAll(small, 0o755))
	must(t, os.WriteFile(filepath.Join(small, "f"), []byte("x"), 0o644))
	sp := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--add", small)))
	hash := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--query", "--hash", sp)))
	smallAttrs := filepath.Join(t.TempDir(), "small.json")
	must(t, os.WriteFile(smallAttrs, []byte(`{"closure":[{"path":"`+sp+`","narHash":"`+hash+`","narSize":1,"references":[]}],"image":{"name":"s","tag":"t","config":{"Env":["S=`+sp+`"]}}}`), 0o644))
	msg, err := exec.Command(ocitoolsBin, "build-image", "--attrs", smallAttrs, "--out", filepath.Join(dir, "out2")).CombinedOutput()
	if err != nil {
		t.Fatalf("build-image after the kill: %v\n%s", err, msg)
	}
	if !strings.Contains(string(msg), "left by an interrupted build-image") {
		t.Errorf("the next build-image did not say it reclaimed: %s", msg)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".out.partial-*")); len(left) != 0 {
		t.Errorf("still left after the next build-image: %v", left)
	}
}

// noiseAttrs writes structured attrs for an image of 192 MiB of text-like
// data, which deflate works hard on (random bytes it stores almost at once):
// several seconds of CPU at level 5.
func noiseAttrs(t *testing.T, dir string) string {
	src := filepath.Join(t.TempDir(), "noise")
	must(t, os.MkdirAll(src, 0o755))
	rng := mathrand.New(mathrand.NewSource(7))
	data := make([]byte, 0, 192<<20)
	for len(data) < 192<<20 {
		data = append(data, "abcdefghijklmnopqrstuvwxyz0123456789 \n"[rng.Intn(38)])
	}
	must(t, os.WriteFile(filepath.Join(src, "data"), data, 0o644))
	noise := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--add", src)))
	hash := strings.TrimSpace(mustOutput(t, exec.Command("nix-store", "--query", "--hash", noise)))
	attrs := filepath.Join(dir, "attrs.json")
	body := `{"closure":[{"path":"` + noise + `","narHash":"` + hash + `","narSize":1,"references":[]}],"image":{"name":"n","tag":"t","config":{"Env":["N=` + noise + `"]}}}`
	must(t, os.WriteFile(attrs, []byte(body), 0o644))
	return attrs
}

// startPartialBuildImage starts build-image into dir/out and returns once
// its partial layout exists (the signal handler is in place by then), while
// the layer is being compressed.
func startPartialBuildImage(t *testing.T, attrs, dir string) (*exec.Cmd, *strings.Builder) {
	cmd := exec.Command(ocitoolsBin, "build-image", "--attrs", attrs, "--out", filepath.Join(dir, "out"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(dir, ".out.partial-*", "blobs")); len(m) > 0 {
			return cmd, &stderr
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no partial layout appeared in %s", dir)
		}
	}
}
