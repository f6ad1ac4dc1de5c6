package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestFromDockerArchive: a Docker image archive, written by skopeo from one
// of our images (docker-archive:, as dockerTools makes), is a fromImage in a
// sandboxed nix-build, plain and gzip-compressed: the image has the base's
// diff_ids, history and config, validates, is reproducible and runs (with
// the base's busybox) and skopeo reads it; an archive whose manifest.json names ../ is refused
// by the builder, naming the input, and leaves no output.
func TestFromDockerArchive(t *testing.T) {
	requireE2E(t)
	requireTools(t, "skopeo")
	base := nixBuild(t, `ociTools.buildImage { name = "base"; tag = "b"; arch = "amd64"; copyToRoot = [ busybox ];
  config = { Env = [ "PATH=/bin" "FROM_BASE=yes" ]; Labels.from = "docker-base"; WorkingDir = "/tmp"; }; }`)
	work := t.TempDir()
	plain := filepath.Join(work, "base.tar")
	mustRun(t, 2*time.Minute, "skopeo", "copy", "--quiet", "oci:"+base+":b", "docker-archive:"+plain+":example/base:b")
	gz := filepath.Join(work, "base.tar.gz")
	gzipFile(t, plain, gz)

	build := func(archive string) string {
		return fmt.Sprintf(`let hello = writeScript "hello" "#!/bin/sh\necho from-app $FROM_BASE in $(pwd); ls /bin/busybox\n";
in ociTools.buildImage { name = "app"; tag = "a"; arch = "amd64";
  fromImage = builtins.path { path = %s; name = "%s"; };
  config.Entrypoint = [ "${hello}" ]; }`, archive, filepath.Base(archive))
	}
	b := readImage(t, base)
	var manifests []string
	for _, archive := range []string{plain, gz} {
		out := nixBuildImage(t, build(archive))
		img := readImage(t, out)
		n := len(b.config.RootFS.DiffIDs)
		if len(img.config.RootFS.DiffIDs) <= n || len(img.config.History) != len(img.config.RootFS.DiffIDs) {
			t.Fatalf("%s: %d diff_ids, %d history entries; want more than the base's %d, one history entry each", archive, len(img.config.RootFS.DiffIDs), len(img.config.History), n)
		}
		for i := 0; i < n; i++ {
			if img.config.RootFS.DiffIDs[i] != b.config.RootFS.DiffIDs[i] || img.config.History[i].Comment != b.config.History[i].Comment {
				t.Errorf("%s: layer %d: diff_id %s (%q), want the base's %s (%q)", archive, i, img.config.RootFS.DiffIDs[i], img.config.History[i].Comment, b.config.RootFS.DiffIDs[i], b.config.History[i].Comment)
			}
			if mt := img.manifest.Layers[i].MediaType; mt != v1.MediaTypeImageLayerGzip {
				t.Errorf("%s: base layer %d is %s, want the image's compression (gzip)", archive, i, mt)
			}
		}
		c := img.config.Config
		if c.Labels["from"] != "docker-base" || c.WorkingDir != "/tmp" || !contains(c.Env, "FROM_BASE=yes") {
			t.Errorf("%s: config %+v does not inherit the base's", archive, c)
		}
		if name := img.manifest.Annotations[v1.AnnotationBaseImageName]; name != "docker.io/example/base:b" && name != "example/base:b" {
			t.Errorf("%s: base name annotation %q, want the archive's RepoTag", archive, name)
		}
		o, err := exec.Command(ocitoolsBin, "run", out).CombinedOutput()
		if err != nil || !strings.Contains(string(o), "from-app yes in /tmp\n/bin/busybox\n") {
			t.Errorf("%s: ocitools run: %v\n%s", archive, err, o)
		}
		mustRun(t, time.Minute, "skopeo", "inspect", "oci:"+out+":a")
		manifests = append(manifests, img.index.Manifests[0].Digest.String())
	}
	if manifests[0] != manifests[1] {
		t.Errorf("the plain and the gzip-compressed archive gave different images: %v", manifests)
	}

	// manifest.json names a layer outside the archive.
	bad := filepath.Join(work, "escape.tar")
	rewriteManifest(t, plain, bad, func(m []map[string]any) { m[0]["Layers"].([]any)[0] = "../../etc/passwd" })
	expr := build(bad)
	log := nixBuildFail(t, expr)
	if !strings.Contains(log, "`fromImage` /nix/store/") || !strings.Contains(log, `layer 1 "../../etc/passwd" is not a relative path inside the archive`) {
		t.Errorf("an archive naming ../../etc/passwd: the error does not name the input and the layer:\n%s", log)
	}
	wantNoOutput(t, expr)
}

func gzipFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	must(t, err)
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err = w.Write(data)
	must(t, err)
	must(t, w.Close())
	must(t, os.WriteFile(to, buf.Bytes(), 0o644))
}

// rewriteManifest copies the tar from to to, with manifest.json changed by edit.
func rewriteManifest(t *testing.T, from, to string, edit func([]map[string]any)) {
	t.Helper()
	entries := readArchiveFiles(t, from)
	for i, e := range entries {
		if e.h.Name == "manifest.json" {
			var m []map[string]any
			must(t, json.Unmarshal(e.data, &m))
			edit(m)
			data, err := json.Marshal(m)
			must(t, err)
			entries[i].data = data
		}
	}
	writeArchiveFiles(t, to, entries)
}

// archiveFile is one entry of a tar file, read whole.
type archiveFile struct {
	h    *tar.Header
	data []byte
}

func readArchiveFiles(t *testing.T, file string) []archiveFile {
	t.Helper()
	in, err := os.Open(file)
	must(t, err)
	defer in.Close()
	var out []archiveFile
	tr := tar.NewReader(in)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		data, err := io.ReadAll(tr)
		must(t, err)
		out = append(out, archiveFile{h, data})
	}
}

// writeArchiveFiles writes entries to file, each header's size set to its data's.
func writeArchiveFiles(t *testing.T, file string, entries []archiveFile) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		e.h.Size = int64(len(e.data))
		must(t, tw.WriteHeader(e.h))
		_, err := tw.Write(e.data)
		must(t, err)
	}
	must(t, tw.Close())
	must(t, os.WriteFile(file, buf.Bytes(), 0o644))
}

// TestFromDockerArchivePick: an archive of two images (docker save of two,
// made here by joining skopeo's archives of two of our images) is a
// fromImage with dockerTools' fromImageName and fromImageTag: the image
// picked is the base (it runs with that base's environment); without a pick
// the builder refuses the archive naming both images, and a pick without
// fromImage is an evaluation error.
func TestFromDockerArchivePick(t *testing.T) {
	requireE2E(t)
	requireTools(t, "skopeo")
	work := t.TempDir()
	var parts []string
	for _, which := range []string{"one", "two"} {
		base := nixBuild(t, fmt.Sprintf(`ociTools.buildImage { name = "base-%s"; tag = "b"; arch = "amd64"; copyToRoot = [ busybox ];
  config.Env = [ "PATH=/bin" "WHICH=%s" ]; }`, which, which))
		part := filepath.Join(work, which+".tar")
		mustRun(t, 2*time.Minute, "skopeo", "copy", "--quiet", "oci:"+base+":b", "docker-archive:"+part+":example/"+which+":b")
		parts = append(parts, part)
	}
	both := filepath.Join(work, "both.tar")
	joinArchives(t, both, parts...)

	build := func(pick string) string {
		return fmt.Sprintf(`let hello = writeScript "hello" "#!/bin/sh\necho base $WHICH\n";
in ociTools.buildImage { name = "app"; tag = "a"; arch = "amd64";
  fromImage = builtins.path { path = %s; name = "both.tar"; };
  %s
  config.Entrypoint = [ "${hello}" ]; }`, both, pick)
	}
	out := nixBuildImage(t, build(`fromImageName = "example/two"; fromImageTag = "b";`))
	if o, err := exec.Command(ocitoolsBin, "run", out).CombinedOutput(); err != nil || string(o) != "base two\n" {
		t.Errorf("ocitools run of the image on example/two:b: %v\n%s", err, o)
	}
	if name := readImage(t, out).manifest.Annotations[v1.AnnotationBaseImageName]; !strings.HasSuffix(name, "example/two:b") {
		t.Errorf("base name annotation %q, want the picked RepoTag", name)
	}
	log := nixBuildFail(t, build(""))
	if !strings.Contains(log, "manifest.json lists 2 images") || !strings.Contains(log, "example/one:b") || !strings.Contains(log, "example/two:b") || !strings.Contains(log, "pick one with `fromImageName` and `fromImageTag`") {
		t.Errorf("no pick: the builder's error does not name both images and the arguments:\n%s", log)
	}
	log = nixBuildFail(t, `ociTools.buildImage { name = "app"; fromImageTag = "b"; }`)
	if !strings.Contains(log, "buildImage: `fromImageTag` picks an image inside `fromImage`, which is not given") {
		t.Errorf("fromImageTag without fromImage:\n%s", log)
	}
}

// joinArchives writes one Docker archive holding the images of parts:
// their files (layers shared by name once) and their manifest.json entries.
func joinArchives(t *testing.T, to string, parts ...string) {
	t.Helper()
	var out []archiveFile
	seen := map[string]bool{}
	var manifest []json.RawMessage
	for _, p := range parts {
		for _, e := range readArchiveFiles(t, p) {
			if e.h.Name == "manifest.json" {
				var m []json.RawMessage
				must(t, json.Unmarshal(e.data, &m))
				manifest = append(manifest, m...)
			} else if !seen[e.h.Name] {
				seen[e.h.Name] = true
				out = append(out, e)
			}
		}
	}
	data, err := json.Marshal(manifest)
	must(t, err)
	out = append(out, archiveFile{&tar.Header{Name: "manifest.json", Mode: 0o644, Typeflag: tar.TypeReg}, data})
	writeArchiveFiles(t, to, out)
}
