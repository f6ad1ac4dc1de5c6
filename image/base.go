package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/compress"
	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/unpack"
)

// baseImage is fromImage, read and verified: its layers come first in the
// new image, unchanged.
type baseImage struct {
	dir      string
	manifest digest.Digest
	config   v1.Image
	// full is the base's config with Docker's fields, which are inherited too.
	full    Config
	layers  []baseLayer
	history []v1.History
	// archive is set for a Docker image archive (dir is then that file): the
	// names of its layer tars, compressed into the new layout by link. Such
	// a base has no manifest digest; tag is its first RepoTag.
	archive []string
	tag     string
}

// baseLayer is one layer of the base: its descriptor (with the OCI media
// type of the same bytes), its diff_id, and the file holding it (symlinks
// resolved, so the new layout links straight to it).
type baseLayer struct {
	desc   v1.Descriptor
	diffID digest.Digest
	file   string
}

// readBase opens the layout dir (a pullImage or buildImage result, or any
// OCI image layout), picks its image for plat (the one pick names, when the
// layout holds several), refuses another platform, and checks every layer
// against its digest before anything is written.
func readBase(dir string, plat v1.Platform, pick basePick) (*baseImage, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(abs); err == nil && fi.Mode().IsRegular() {
		return readDockerArchive(abs, plat, pick)
	}
	l, err := unpack.OpenLayout(abs)
	if err != nil {
		return nil, fmt.Errorf("`fromImage` %s: %w", dir, err)
	}
	ref, err := layoutRef(l, pick)
	if err != nil {
		return nil, fmt.Errorf("`fromImage` %s: %w", dir, err)
	}
	want := unpack.Platform{OS: plat.OS, Architecture: plat.Architecture, Variant: plat.Variant}
	img, err := l.Resolve(context.Background(), ref, want)
	if err != nil {
		return nil, fmt.Errorf("`fromImage` %s: %w", dir, err)
	}
	got := unpack.Platform{OS: img.Config.OS, Architecture: img.Config.Architecture, Variant: img.Config.Variant}
	if !want.Matches(&img.Config.Platform) {
		return nil, fmt.Errorf("`fromImage` %s is an image for %s, but this image is for %s: set os/arch to %s, or use a base for %s (pullImage's platform)", dir, got, want, got, want)
	}
	b := &baseImage{dir: abs, config: img.Config, manifest: img.ManifestDesc.Digest}
	r := &layout.Reader{Dir: abs}
	data, err := r.ReadBlob(img.Manifest.Config, layout.MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("`fromImage` %s: config: %w", dir, err)
	}
	var full imageJSON
	if err := json.Unmarshal(data, &full); err != nil {
		return nil, fmt.Errorf("`fromImage` %s: config %s: %w", dir, img.Manifest.Config.Digest, err)
	}
	b.full = full.Config
	for i, ld := range img.Manifest.Layers {
		alg, err := compress.FromMediaType(ld.MediaType)
		if err != nil {
			return nil, fmt.Errorf("`fromImage` %s: layer %d (%s): %w", dir, i+1, ld.Digest, err)
		}
		if err := verifyBlob(r, ld); err != nil {
			return nil, fmt.Errorf("`fromImage` %s: layer %d: %w", dir, i+1, err)
		}
		p, err := r.BlobPath(ld.Digest)
		if err != nil {
			return nil, err
		}
		if p, err = filepath.EvalSymlinks(p); err != nil {
			return nil, fmt.Errorf("`fromImage` %s: layer %d: %w", dir, i+1, err)
		}
		desc := v1.Descriptor{MediaType: alg.MediaType(), Digest: ld.Digest, Size: ld.Size}
		b.layers = append(b.layers, baseLayer{desc: desc, diffID: img.Config.RootFS.DiffIDs[i], file: p})
	}
	b.history = baseHistory(img.Config.History, len(b.layers))
	return b, nil
}

// layoutRef is the ref name of the layout's image that pick names ("" when
// pick is not set: the layout must then hold one image, or one per
// platform). A layout's images are told apart by their ref names; the
// manifests sharing one are one image's platforms.
func layoutRef(l *unpack.Layout, pick basePick) (string, error) {
	if !pick.set() {
		return "", nil
	}
	refs, err := l.RefNames()
	if err != nil {
		return "", err
	}
	images := make([][]string, len(refs))
	for i, r := range refs {
		images[i] = []string{r}
	}
	i, err := pick.pick("index.json", images, true)
	if err != nil {
		return "", err
	}
	return refs[i], nil
}

// annotations adds image-spec's base image annotations to the manifest's
// (the caller's own win): the base's manifest digest, and its name when
// known.
func (b *baseImage) annotations(a map[string]string, name string) map[string]string {
	out := map[string]string{}
	if b.manifest != "" {
		out[v1.AnnotationBaseImageDigest] = b.manifest.String()
	}
	if name == "" {
		name = b.tag
	}
	if name != "" {
		out[v1.AnnotationBaseImageName] = name
	}
	for k, v := range a {
		out[k] = v
	}
	return out
}

// layerCount is the number of the base's layers (0 without a base).
func (b *baseImage) layerCount() int {
	if b == nil {
		return 0
	}
	return len(b.layers)
}

// verifyBlob reads a blob whole and checks its size and digest.
func verifyBlob(r *layout.Reader, d v1.Descriptor) error {
	v, err := r.OpenVerified(d)
	if err != nil {
		return err
	}
	defer v.Close()
	if _, err := io.Copy(io.Discard, v); err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return v.Verify()
}

// baseHistory keeps the base's history when it matches its layers (one
// entry without empty_layer per layer), else writes one entry per layer, so
// that the new image's history and layers stay consistent.
func baseHistory(h []v1.History, layers int) []v1.History {
	n := 0
	for _, e := range h {
		if !e.EmptyLayer {
			n++
		}
	}
	if n == layers {
		return h
	}
	out := make([]v1.History, layers)
	for i := range out {
		out[i] = v1.History{CreatedBy: "fromImage", Comment: fmt.Sprintf("base layer %d (the base's history did not match its layers)", i+1)}
	}
	return out
}

// link puts the base's layers into l as symbolic links to the base's own
// files: the store keeps one copy, and the new image's closure holds the base.
// A Docker archive's layers are compressed into l with alg instead.
func (b *baseImage) link(l *layout.Layout, alg compress.Algorithm) error {
	if b.archive != nil {
		return b.writeArchiveLayers(l, alg)
	}
	for _, bl := range b.layers {
		p := l.BlobPath(bl.desc.Digest)
		if _, err := os.Lstat(p); err == nil {
			continue // the same layer twice in the base
		}
		if err := os.Symlink(bl.file, p); err != nil {
			return fmt.Errorf("`fromImage`: %w", err)
		}
	}
	return nil
}

// mergeConfig is the config of an image built on base with the config c
// given, field by field as a Dockerfile's FROM does: what c sets replaces
// the base's, Env is merged by name (a PATH given is put before the base's),
// Labels, ExposedPorts and Volumes are merged, and an Entrypoint given
// without a Cmd drops the base's Cmd (it was the old entrypoint's arguments).
func mergeConfig(base, c Config) Config {
	return Config{ImageConfig: mergeImageConfig(base.ImageConfig, c.ImageConfig), DockerConfig: mergeDocker(base.DockerConfig, c.DockerConfig)}
}

// mergeDocker: Docker's fields given replace the base's.
func mergeDocker(base, c DockerConfig) DockerConfig {
	out := base
	if c.Healthcheck != nil {
		out.Healthcheck = c.Healthcheck
	}
	if c.OnBuild != nil {
		out.OnBuild = c.OnBuild
	}
	if c.Shell != nil {
		out.Shell = c.Shell
	}
	if c.Hostname != "" {
		out.Hostname = c.Hostname
	}
	if c.Domainname != "" {
		out.Domainname = c.Domainname
	}
	if c.StopTimeout != nil {
		out.StopTimeout = c.StopTimeout
	}
	return out
}

func mergeImageConfig(base, c v1.ImageConfig) v1.ImageConfig {
	out := base
	out.Env = mergeEnv(base.Env, c.Env)
	if c.Entrypoint != nil {
		out.Entrypoint = c.Entrypoint
		out.Cmd = nil
	}
	if c.Cmd != nil {
		out.Cmd = c.Cmd
	}
	if c.User != "" {
		out.User = c.User
	}
	if c.WorkingDir != "" {
		out.WorkingDir = c.WorkingDir
	}
	if c.StopSignal != "" {
		out.StopSignal = c.StopSignal
	}
	//lint:ignore SA1019 deprecated, but an argument buildImage accepts (Windows images)
	out.ArgsEscaped = out.ArgsEscaped || c.ArgsEscaped
	out.Labels = mergeMap(base.Labels, c.Labels)
	out.ExposedPorts = mergeMap(base.ExposedPorts, c.ExposedPorts)
	out.Volumes = mergeMap(base.Volumes, c.Volumes)
	return out
}

func mergeMap[V any](a, b map[string]V) map[string]V {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := make(map[string]V, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// mergeEnv keeps the base's order, replaces a variable given again, and
// appends new ones in the order given; PATH given is prepended to the base's
// PATH, so the base's programs stay reachable.
func mergeEnv(base, add []string) []string {
	if len(add) == 0 {
		return base
	}
	idx := map[string]int{}
	out := append([]string(nil), base...)
	for i, e := range out {
		name, _, _ := strings.Cut(e, "=")
		idx[name] = i
	}
	for _, e := range add {
		name, val, _ := strings.Cut(e, "=")
		i, ok := idx[name]
		switch {
		case !ok:
			idx[name] = len(out)
			out = append(out, e)
		case name == "PATH":
			_, old, _ := strings.Cut(out[i], "=")
			out[i] = "PATH=" + joinPath(val, old)
		default:
			out[i] = e
		}
	}
	return out
}

// joinPath is a then b, each directory once.
func joinPath(a, b string) string {
	seen := map[string]bool{}
	var dirs []string
	for _, d := range append(strings.Split(a, ":"), strings.Split(b, ":")...) {
		if d != "" && !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return strings.Join(dirs, ":")
}
