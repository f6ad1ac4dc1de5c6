package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// The consumers of buildImage's output, each run for real on images built with
// nix-build: skopeo, umoci + runc, podman, and docker 20.10 (a daemon the test
// starts). Which tool reads which compression is what docs/buildImage.md says;
// the refusals are asserted too, so the docs cannot drift from the tools.

const consumerMarker = "ocitools-consumer-ok"

// consumerImage is one image built for these tests, and its one-file forms.
type consumerImage struct {
	compression string
	name, tag   string
	layout      string // the image layout in the store
	manifest    v1.Manifest
	archive     string // toArchive's file (docker load)
	ociArchive  string // toOCIArchive's file
}

func (c consumerImage) ref() string { return c.name + ":" + c.tag }

var (
	consumerOnce   sync.Once
	consumerImages map[string]*consumerImage
	consumerErr    string
)

// imageExpr is the buildImage call the consumer tests build: busybox's
// closure, an entrypoint that proves it ran from the image's store path.
func imageExpr(compression string) string {
	return fmt.Sprintf(`ociTools.buildImage {
  name = "ocitools-e2e/consumers";
  tag = %[1]q;
  compression = %[1]q;
  config = {
    Entrypoint = [ "${busybox}/bin/sh" "-c" "test -x ${busybox}/bin/busybox && echo %[2]s \"$0\" $(cat /msg)" ];
    Cmd = [ "from-cmd" ];
    Env = [ "PATH=${busybox}/bin" ];
  };
  copyToRoot = [ (runCommand "msg" { } "mkdir $out; echo from-root > $out/msg") ];
  # busybox comes from a buildLayer: its blob is a symlink into that layer's
  # store path, which every consumer must follow.
  layers = [ (ociTools.buildLayer { deps = [ busybox ]; compression = %[1]q; }) ];
}`, compression, consumerMarker)
}

// archivesExpr: the one-file forms of the image, from nix/archive.nix.
func archivesExpr(image, attr string) string {
	return fmt.Sprintf("(import %s/nix/archive.nix { ocitools = %s; }).%s (%s)",
		repoRoot, filepath.Dir(filepath.Dir(ocitoolsBin)), attr, image)
}

// consumerImagesFor builds the gzip, zstd and uncompressed images once for
// every consumer test.
func consumerImagesFor(t *testing.T) map[string]*consumerImage {
	t.Helper()
	requireE2E(t)
	consumerOnce.Do(func() {
		imgs := map[string]*consumerImage{}
		for _, comp := range []string{"gzip", "zstd", "none"} {
			c := &consumerImage{compression: comp, name: "ocitools-e2e/consumers", tag: comp}
			out, log, err := nixBuildResult(t, imageExpr(comp))
			if err != nil {
				consumerErr = fmt.Sprintf("nix-build of the %s image: %v\n%s", comp, err, log)
				return
			}
			c.layout = out
			var idx v1.Index
			readJSONFile(t, filepath.Join(out, "index.json"), &idx)
			if len(idx.Manifests) != 1 {
				consumerErr = fmt.Sprintf("%s/index.json lists %d manifests, want 1", out, len(idx.Manifests))
				return
			}
			readJSONFile(t, filepath.Join(out, "blobs", "sha256", idx.Manifests[0].Digest.Encoded()), &c.manifest)
			if fi, err := os.Lstat(filepath.Join(out, "blobs", "sha256", c.manifest.Layers[0].Digest.Encoded())); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				consumerErr = fmt.Sprintf("%s: the buildLayer blob is not a symlink into the layer's store path (%v)", out, err)
				return
			}
			for _, attr := range []string{"toArchive", "toOCIArchive"} {
				expr := archivesExpr(imageExpr(comp), attr)
				file, log, err := nixBuildResult(t, expr)
				if err != nil {
					consumerErr = fmt.Sprintf("nix-build of %s of the %s image: %v\n%s", attr, comp, err, log)
					return
				}
				// The same bytes again: the archive is deterministic.
				if _, log, err := nixBuildResult(t, expr, "--check"); err != nil {
					consumerErr = fmt.Sprintf("nix-build --check of %s of the %s image: %v\n%s", attr, comp, err, log)
					return
				}
				if attr == "toArchive" {
					c.archive = file
				} else {
					c.ociArchive = file
				}
			}
			imgs[comp] = c
		}
		consumerImages = imgs
	})
	if consumerErr != "" {
		t.Fatal(consumerErr)
	}
	if consumerImages == nil {
		t.Fatal("building the consumer images failed in an earlier test (see its log)")
	}
	return consumerImages
}

// requireTool fails (not skips) when a consumer is missing: the README's test
// command installs them all.
func requireTool(t *testing.T, tool, pkg string) {
	t.Helper()
	requireE2E(t)
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s is not installed (Debian package %s; scripts/test installs it): %v", tool, pkg, err)
	}
}

// runTool runs a command with a deadline and returns its output and error.
func runTool(t *testing.T, timeout time.Duration, name string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: no answer within %s\n%s", name, strings.Join(args, " "), timeout, e.String())
	}
	return o.String(), e.String(), err
}

func mustRun(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	out, errOut, err := runTool(t, timeout, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// wantRan checks a container's output: the marker, the Cmd as $0 and the file
// copyToRoot put at the root.
func wantRan(t *testing.T, who, out string) {
	t.Helper()
	if want := consumerMarker + " from-cmd from-root"; !strings.Contains(out, want) {
		t.Errorf("%s printed %q, want %q", who, out, want)
	}
}

func wantRefusal(t *testing.T, who string, err error, out string, says ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded with zstd layers; the docs say it cannot read them: update docs/buildImage.md and this test\n%s", who, out)
	}
	for _, s := range says {
		if !strings.Contains(out, s) {
			t.Errorf("%s failed, but its message does not say %q:\n%s", who, s, out)
		}
	}
}

func TestImageConsumersSkopeo(t *testing.T) {
	requireTool(t, "skopeo", "skopeo")
	for comp, img := range consumerImagesFor(t) {
		t.Run(comp, func(t *testing.T) {
			src := "oci:" + img.layout + ":" + img.tag
			var insp struct {
				Digest       string
				Architecture string
				Os           string
				Layers       []string
			}
			if err := json.Unmarshal([]byte(mustRun(t, time.Minute, "skopeo", "inspect", src)), &insp); err != nil {
				t.Fatal(err)
			}
			if len(insp.Layers) != len(img.manifest.Layers) || insp.Os != "linux" || insp.Architecture == "" {
				t.Errorf("skopeo inspect %s: %+v, want %d layers, os linux", src, insp, len(img.manifest.Layers))
			}
			for i, l := range img.manifest.Layers {
				if i < len(insp.Layers) && insp.Layers[i] != l.Digest.String() {
					t.Errorf("skopeo inspect: layer %d is %s, the manifest says %s", i, insp.Layers[i], l.Digest)
				}
			}
			dir := t.TempDir()
			// oci-archive: every compression, the layers as they are.
			ociArch := filepath.Join(dir, "oci.tar")
			mustRun(t, 2*time.Minute, "skopeo", "copy", "--quiet", src, "oci-archive:"+ociArch+":"+img.tag)
			var back v1.Manifest
			json.Unmarshal([]byte(mustRun(t, time.Minute, "skopeo", "inspect", "--raw", "oci-archive:"+ociArch+":"+img.tag)), &back)
			if comp == "none" {
				// skopeo 1.9 gzips uncompressed layers on the way (docs say so).
				for i, l := range back.Layers {
					if l.MediaType != v1.MediaTypeImageLayerGzip {
						t.Errorf("skopeo copy of an uncompressed image to oci-archive: layer %d is %s; the docs say skopeo gzips it", i, l.MediaType)
					}
				}
			} else if !sameLayers(back.Layers, img.manifest.Layers) {
				t.Errorf("skopeo copy to oci-archive changed the layers: %v, want %v", back.Layers, img.manifest.Layers)
			}
			// Our own one-file forms are read by skopeo too, layers unchanged.
			for _, src := range []string{"oci-archive:" + img.ociArchive, "docker-archive:" + img.archive} {
				var m v1.Manifest
				json.Unmarshal([]byte(mustRun(t, time.Minute, "skopeo", "inspect", "--raw", src)), &m)
				if src[0] == 'o' && !sameLayers(m.Layers, img.manifest.Layers) {
					t.Errorf("skopeo inspect %s: layers %v, want %v", src, m.Layers, img.manifest.Layers)
				}
			}
			// docker-archive: gzip and none; skopeo refuses zstd layers there.
			dockArch := filepath.Join(dir, "docker.tar")
			out, errOut, err := runTool(t, 2*time.Minute, "skopeo", "copy", "--quiet", src, "docker-archive:"+dockArch+":"+img.ref())
			if comp == "zstd" {
				wantRefusal(t, "skopeo copy to docker-archive:", err, out+errOut, "zstd compression is not supported for docker images")
				return
			}
			if err != nil {
				t.Fatalf("skopeo copy %s docker-archive: %v\n%s", src, err, errOut)
			}
			mustRun(t, time.Minute, "skopeo", "inspect", "docker-archive:"+dockArch)
			verifyStorePath(t, img.layout)
		})
	}
}

func sameLayers(a, b []v1.Descriptor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Digest != b[i].Digest || a[i].MediaType != b[i].MediaType {
			return false
		}
	}
	return true
}

func TestImageConsumersUmociRunc(t *testing.T) {
	requireTool(t, "umoci", "umoci")
	for comp, img := range consumerImagesFor(t) {
		t.Run(comp, func(t *testing.T) {
			bundle := filepath.Join(t.TempDir(), "bundle")
			out, errOut, err := runTool(t, 2*time.Minute, "umoci", "unpack", "--image", img.layout+":"+img.tag, bundle)
			if comp == "zstd" {
				wantRefusal(t, "umoci unpack", err, out+errOut, "not correct mediatype", v1.MediaTypeImageLayerZstd)
				return
			}
			if err != nil {
				t.Fatalf("umoci unpack: %v\n%s%s", err, out, errOut)
			}
			// umoci's config asks for a terminal; these runs have none.
			cfgPath := filepath.Join(bundle, "config.json")
			var cfg map[string]any
			if err := json.Unmarshal([]byte(mustReadFile(t, cfgPath)), &cfg); err != nil {
				t.Fatal(err)
			}
			cfg["process"].(map[string]any)["terminal"] = false
			data, _ := json.Marshal(cfg)
			if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := runcRun(t, bundle)
			if code != 0 {
				t.Fatalf("runc run of umoci's bundle: exit %d\n%s%s", code, stdout, stderr)
			}
			wantRan(t, "runc run of umoci's bundle", stdout)
			verifyStorePath(t, img.layout)
		})
	}
}

func mustReadFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// podman as root, with storage of its own in a temporary directory (vfs: no
// mounts left behind), runc (crun cannot run here) and ulimits runc can set.
func podmanCmd(t *testing.T) func(args ...string) (string, string, error) {
	t.Helper()
	requireTool(t, "podman", "podman")
	// Short: podman refuses a runroot longer than 50 characters.
	dir, err := os.MkdirTemp("", "pdm-")
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--storage-driver", "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "none",
		"--tmpdir", filepath.Join(dir, "tmp")}
	t.Cleanup(func() {
		_, _, _ = runTool(t, time.Minute, "podman", append(base, "system", "reset", "--force")...)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing podman's storage: %v", err)
		}
	})
	return func(args ...string) (string, string, error) {
		return runTool(t, 3*time.Minute, "podman", append(base, args...)...)
	}
}

var podmanRun = []string{"run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

func TestImageConsumersPodman(t *testing.T) {
	for comp, img := range consumerImagesFor(t) {
		t.Run(comp, func(t *testing.T) {
			podman := podmanCmd(t)
			// The layout itself, through the oci: transport: every compression.
			out, errOut, err := podman(append(podmanRun, "oci:"+img.layout+":"+img.tag)...)
			if err != nil {
				t.Fatalf("podman run oci:%s:%s: %v\n%s%s", img.layout, img.tag, err, out, errOut)
			}
			wantRan(t, "podman run oci:", out)
			// podman load of the one-file forms, then run by name.
			for _, f := range []string{img.archive, img.ociArchive} {
				if out, errOut, err := podman("rmi", "--all", "--force"); err != nil {
					t.Fatalf("podman rmi: %v\n%s%s", err, out, errOut)
				}
				out, errOut, err := podman("load", "--input", f)
				if err != nil {
					t.Fatalf("podman load %s: %v\n%s%s", f, err, out, errOut)
				}
				want := img.ref()
				if !strings.Contains(out, want) {
					t.Errorf("podman load %s printed %q, want the image named %s", f, out, want)
				}
				out, errOut, err = podman(append(podmanRun, want)...)
				if err != nil {
					t.Fatalf("podman run %s (loaded from %s): %v\n%s%s", want, f, err, out, errOut)
				}
				wantRan(t, "podman run of the loaded "+filepath.Base(f), out)
			}
			verifyStorePath(t, img.layout)
		})
	}
}

func TestImageConsumersDocker(t *testing.T) {
	requireTool(t, "skopeo", "skopeo")
	imgs := consumerImagesFor(t)
	d := startDockerd(t)
	for _, comp := range []string{"gzip", "zstd", "none"} {
		img := imgs[comp]
		t.Run(comp, func(t *testing.T) {
			// toArchive's file: docker 20.10 loads every compression (zstd
			// too: docker load decompresses what it finds).
			out, errOut, err := d.run(3*time.Minute, "load", "--input", img.archive)
			if err != nil {
				t.Fatalf("docker load %s: %v\n%s%s", img.archive, err, out, errOut)
			}
			if want := "Loaded image: " + img.ref(); !strings.Contains(out, want) {
				t.Errorf("docker load printed %q, want %q", out, want)
			}
			out, errOut, err = d.run(3*time.Minute, "run", "--rm", "--network", "none", img.ref())
			if err != nil {
				t.Fatalf("docker run %s: %v\n%s%s", img.ref(), err, out, errOut)
			}
			wantRan(t, "docker run", out)
			// The OCI-only form is not for docker 20.10: it needs manifest.json.
			if out, _, err := d.run(3*time.Minute, "load", "--input", img.ociArchive); err == nil {
				t.Errorf("docker 20.10 loaded the OCI-only archive; the docs say it cannot\n%s", out)
			}
			// ocitools archive on standard output, piped into docker load.
			piped := "ocitools-e2e/piped:" + comp
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			pipe := exec.CommandContext(ctx, "sh", "-c", `"$0" archive --name "$1" --tag "$2" "$3" - | "$4" -H "unix://$5" load`,
				ocitoolsBin, "ocitools-e2e/piped", comp, img.layout, dockerClient, d.sock)
			if out, err := pipe.CombinedOutput(); err != nil || !strings.Contains(string(out), "Loaded image: "+piped) {
				t.Fatalf("ocitools archive - | docker load: %v\n%s", err, out)
			}
			out, errOut, err = d.run(3*time.Minute, "run", "--rm", "--network", "none", piped)
			if err != nil {
				t.Fatalf("docker run %s: %v\n%s%s", piped, err, out, errOut)
			}
			wantRan(t, "docker run of the piped archive", out)
			if comp == "zstd" {
				return // skopeo's docker-archive: refuses zstd (TestImageConsumersSkopeo)
			}
			// skopeo's docker-archive: output loads too.
			dockArch := filepath.Join(t.TempDir(), "skopeo.tar")
			ref2 := "ocitools-e2e/skopeo:" + comp
			mustRun(t, 2*time.Minute, "skopeo", "copy", "--quiet", "oci:"+img.layout+":"+img.tag, "docker-archive:"+dockArch+":"+ref2)
			if out, errOut, err := d.run(3*time.Minute, "load", "--input", dockArch); err != nil {
				t.Fatalf("docker load of skopeo's docker-archive: %v\n%s%s", err, out, errOut)
			}
			out, errOut, err = d.run(3*time.Minute, "run", "--rm", "--network", "none", ref2)
			if err != nil {
				t.Fatalf("docker run %s: %v\n%s%s", ref2, err, out, errOut)
			}
			wantRan(t, "docker run of skopeo's archive", out)
		})
	}
}

// TestArchiveNixBadInput: archive.nix names the argument that is wrong, at
// evaluation.
func TestArchiveNixBadInput(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"{ image = 3; }", "archive: `image` must be an image layout (buildImage's result), not an integer"},
		{`{ image = "/nix/store/x"; name = 1; }`, "archive: `name` must be null or a string, not an integer"},
		{`{ image = "/nix/store/x"; ociOnly = "yes"; }`, "archive: `ociOnly` must be a boolean, not the string \"yes\""},
	} {
		expr := fmt.Sprintf("(import %s/nix/archive.nix { ocitools = %s; }).archive %s",
			repoRoot, filepath.Dir(filepath.Dir(ocitoolsBin)), tc.args)
		if log := nixBuildFail(t, expr); !strings.Contains(log, tc.want) {
			t.Errorf("archive %s: the error does not say %q:\n%s", tc.args, tc.want, log)
		}
	}
}
