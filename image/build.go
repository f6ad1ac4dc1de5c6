package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/image/compress"
	"github.com/ocitools/ocitools/image/layer"
	"github.com/ocitools/ocitools/image/layering"
	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/image/stream"
	"github.com/ocitools/ocitools/rootfs"
	"github.com/ocitools/ocitools/sbom"
)

// LayerInfoFile is the description a buildLayer output holds beside its blob.
const LayerInfoFile = "layer.json"

// LayerBlobFile is the compressed layer in a buildLayer output.
const LayerBlobFile = "blob"

// LayerInfo describes a buildLayer output: images link its blob as it is.
type LayerInfo struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	DiffID    digest.Digest `json:"diffID"`
	// Paths are the store paths the layer holds, sorted.
	Paths []string `json:"paths"`
}

// Request is one build: the closure, the options and where to write.
type Request struct {
	Closure *derivation.Closure
	Options json.RawMessage
	// Out is the layout directory to create (it must not exist). On failure
	// everything written is removed.
	Out string
	// Root is prepended to store paths when reading them: "" in a build,
	// a fake store's parent in tests.
	Root string
	// SBOM is the sbom attribute (absent: no SBOM), LayerClosure the
	// closure of the explicit layers (their store paths' hashes and
	// references); build-image only.
	SBOM         json.RawMessage
	LayerClosure []derivation.PathInfoJSON
	// System is the build's Nix system ("x86_64-linux"): its CPU is the
	// default arch, as for bundles ("" means this program's).
	System string
}

// layerJob is one layer to write, or to link from a buildLayer output.
type layerJob struct {
	spec    layer.Spec
	from    string // a buildLayer output to link
	info    LayerInfo
	comment string
	// streamed is set when the layer is recorded in stream.json, not stored.
	streamed *compress.Result
}

// Build writes the image layout of a buildImage request (req.Options holds
// buildImage's arguments, checked by the table and parseOptions).
func Build(req Request) (err error) {
	p, err := parseOptions(req.Options, req.System)
	if err != nil {
		return fmt.Errorf("build-image: %w", err)
	}
	var base *baseImage
	if p.basePick.set() && p.fromImage == "" {
		return fmt.Errorf("build-image: %s picks an image inside `fromImage`, which is not given", p.basePick)
	}
	if p.fromImage != "" {
		// Read and verified before anything is written.
		if base, err = readBase(p.fromImage, p.platform, p.basePick); err != nil {
			return fmt.Errorf("build-image: %w", err)
		}
	}
	jobs, err := plan(req.Closure, p, req.Root, base.layerCount())
	if err != nil {
		return fmt.Errorf("build-image: %w", err)
	}
	if err := checkEntrypoint(p.config.ImageConfig, jobs, p.perms, req.Root, base != nil); err != nil {
		return fmt.Errorf("build-image: %w", err)
	}
	bom, err := sbomInput(req, p, jobs, base)
	if err != nil {
		return fmt.Errorf("build-image: %w", err)
	}
	l, err := layout.Create(req.Out)
	if err != nil {
		return fmt.Errorf("build-image: %w", err)
	}
	defer func() {
		if err != nil {
			_ = rootfs.RemoveAll(req.Out)
		}
	}()
	if err := writeLayers(l, jobs, p.compression, p.stream); err != nil {
		return fmt.Errorf("build-image: %w", err)
	}
	if err := checkPatternHits(p.perms); err != nil {
		return fmt.Errorf("build-image: %w", err)
	}
	if base != nil {
		if err := base.link(l, p.compression); err != nil {
			return fmt.Errorf("build-image: %w", err)
		}
	}
	desc, err := writeImage(l, p, base, jobs)
	if err != nil {
		return fmt.Errorf("build-image: %w", err)
	}
	if p.stream {
		if err := writeRecord(l.Dir, jobs, p.compression); err != nil {
			return fmt.Errorf("build-image: %w", err)
		}
	}
	if err := l.WriteIndex(desc, p.tag); err != nil {
		return fmt.Errorf("build-image: %w", err)
	}
	if bom != nil {
		// Beside index.json, outside the image: it describes the image and
		// is attached to it as a referrer when pushed.
		if err := sbom.Write(req.Out, bom); err != nil {
			return fmt.Errorf("build-image: %w", err)
		}
	}
	return nil
}

// writeImage writes the image config and manifest over the base's layers
// (linked already) and the layers jobs wrote, and returns the manifest's
// descriptor with the platform.
func writeImage(l *layout.Layout, p *parsed, base *baseImage, jobs []*layerJob) (v1.Descriptor, error) {
	img := imageJSON{Image: v1.Image{
		Created:  &p.created,
		Platform: p.platform,
		RootFS:   v1.RootFS{Type: "layers"},
	}, Config: p.config}
	manifest := v1.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   v1.MediaTypeImageManifest,
		Annotations: p.annotations,
	}
	if base != nil {
		img.Config = mergeConfig(base.full, p.config)
		manifest.Annotations = base.annotations(manifest.Annotations, p.baseName)
		img.History = base.history
		for _, bl := range base.layers {
			img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, bl.diffID)
			manifest.Layers = append(manifest.Layers, bl.desc)
		}
	}
	for _, j := range jobs {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, j.info.DiffID)
		img.History = append(img.History, v1.History{Created: &p.created, CreatedBy: "ocitools build-image", Comment: j.comment})
		manifest.Layers = append(manifest.Layers, v1.Descriptor{MediaType: j.info.MediaType, Digest: j.info.Digest, Size: j.info.Size})
	}
	var err error
	if manifest.Config, err = l.WriteJSON(v1.MediaTypeImageConfig, img); err != nil {
		return v1.Descriptor{}, err
	}
	desc, err := l.WriteJSON(v1.MediaTypeImageManifest, manifest)
	if err != nil {
		return v1.Descriptor{}, err
	}
	plat := p.platform
	desc.Platform = &plat
	return desc, nil
}

// plan lists the image's own layers, bottom first (a fromImage's come before
// them, and count against maxLayers): the explicit layers in the order
// given, the automatic ones (planned by the layering strategy), the root
// layer (copyToRoot, users, dirs, files, /tmp), then the Nix database layer.
func plan(closure *derivation.Closure, p *parsed, root string, baseLayers int) ([]*layerJob, error) {
	var jobs []*layerJob
	explicit := map[string]string{} // store path -> the layer holding it
	for i, dir := range p.layers {
		info, err := ReadLayerInfo(dir)
		if err != nil {
			return nil, fmt.Errorf("`layers` element %d: %w", i, err)
		}
		for _, sp := range info.Paths {
			if _, dup := explicit[sp]; !dup {
				explicit[sp] = dir
			}
		}
		jobs = append(jobs, &layerJob{from: dir, info: *info, comment: "buildLayer " + path.Base(dir) + ": " + strings.Join(info.Paths, " ")})
	}
	exclude := map[string]bool{}
	for sp := range explicit {
		exclude[sp] = true
	}
	nodes := make([]layering.Node, 0, len(closure.Paths))
	auto := 0
	for _, pi := range closure.Paths {
		nodes = append(nodes, layering.Node{Path: pi.Path(), References: pi.References, NarSize: pi.NarSize})
		if !exclude[pi.Path()] {
			auto++
		}
	}
	entries, err := rootEntries(rootInput{p: p, closure: closure, root: root})
	if err != nil {
		return nil, err
	}
	budget := p.maxLayers - len(jobs) - baseLayers
	var fixed []string
	if baseLayers > 0 {
		fixed = append(fixed, fmt.Sprintf(", the %d layers of fromImage", baseLayers))
	}
	if len(entries) > 0 {
		budget--
		fixed = append(fixed, " and the root layer")
	}
	if p.nixDB {
		budget--
		fixed = append(fixed, " and the Nix database layer")
	}
	if budget < 0 || (auto > 0 && budget < 1) {
		return nil, fmt.Errorf("`maxLayers` is %d, but %d explicit layers%s leave no room for the %d other store paths; raise maxLayers",
			p.maxLayers, len(p.layers), strings.Join(fixed, ""), auto)
	}
	var autoLayers []layering.Layer
	if auto > 0 {
		if autoLayers, err = layering.ByName(p.layering, nodes, budget, exclude); err != nil {
			return nil, err
		}
	}
	if err := checkPerms(p.perms, closure, exclude, explicit, entries, root); err != nil {
		return nil, err
	}
	for _, al := range autoLayers {
		jobs = append(jobs, &layerJob{spec: layer.Spec{StorePaths: al.Paths, Perms: p.perms, Root: root, UID: p.nixUID, GID: p.nixGID}, comment: "store paths: " + strings.Join(al.Paths, " ")})
	}
	if len(entries) > 0 {
		jobs = append(jobs, &layerJob{spec: layer.Spec{Entries: entries, Perms: p.perms, Root: root}, comment: rootComment(p)})
	}
	if p.nixDB {
		// Last, so that it is the top layer: nothing below can shadow it.
		db, err := nixDBLayer(closure, jobs, p.nixUID, p.nixGID)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, db)
	}
	return jobs, nil
}

// checkPerms refuses a perm for a path that is not in the image, or that is
// in an explicit layer (already compressed: give perms to buildLayer).
func checkPerms(perms []layer.Perm, closure *derivation.Closure, exclude map[string]bool, explicit map[string]string, entries []layer.Entry, root string) error {
	generated := map[string]bool{}
	links := map[string]string{}
	for _, e := range entries {
		generated[path.Clean(e.Path)] = true
		if !e.Dir && !e.File {
			links[path.Clean(e.Path)] = e.Linkname
		}
	}
	for _, pm := range perms {
		if pm.IsPattern() {
			continue // checked by its hits once the layers are written
		}
		p := path.Clean(pm.Path)
		if p == "/" || p == "/nix" || p == "/nix/store" {
			return fmt.Errorf("`perms`: %s cannot be changed: /, /nix and /nix/store are the same in every layer (mode 0755, owner 0:0), so that the order layers are applied in does not matter", pm.Path)
		}
		if generated[p] {
			continue
		}
		sp := storePathOf(p)
		if sp == "" {
			// Below a copyToRoot link the entry is the store file it leads to.
			for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
				if target, ok := links[dir]; ok {
					return fmt.Errorf("`perms`: %s is reached through the copyToRoot link %s -> %s; perms apply to the entries of the layers: give %s", pm.Path, dir, target, path.Join(target, strings.TrimPrefix(p, dir)))
				}
			}
			return fmt.Errorf("`perms`: %s is not in the image (it is neither in the closure nor in the copyToRoot tree)", pm.Path)
		}
		if l, ok := explicit[sp]; ok {
			return fmt.Errorf("`perms`: %s is in the explicit layer %s, which is already built; give this perm to that buildLayer instead", pm.Path, l)
		}
		if _, ok := closure.Lookup(sp); !ok || exclude[sp] {
			return fmt.Errorf("`perms`: %s is not in the image (store path %s is not in the closure)", pm.Path, sp)
		}
		if _, err := os.Lstat(root + p); err != nil {
			return fmt.Errorf("`perms`: %s is not in the image: %w", pm.Path, err)
		}
	}
	return nil
}

// storePathOf returns the /nix/store/<name> prefix of p, or "".
func storePathOf(p string) string {
	rest, ok := strings.CutPrefix(p, "/nix/store/")
	if !ok || rest == "" {
		return ""
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return "/nix/store/" + rest
}

// ReadLayerInfo reads a buildLayer output's layer.json.
func ReadLayerInfo(dir string) (*LayerInfo, error) {
	f, err := os.Open(filepath.Join(dir, LayerInfoFile))
	if err != nil {
		return nil, fmt.Errorf("%s is not a buildLayer output: %w", dir, err)
	}
	defer f.Close()
	var info LayerInfo
	dec := json.NewDecoder(io.LimitReader(f, 64<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&info); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", dir, LayerInfoFile, err)
	}
	if err := info.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %s: digest: %w", dir, LayerInfoFile, err)
	}
	if _, err := compress.FromMediaType(info.MediaType); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", dir, LayerInfoFile, err)
	}
	return &info, nil
}

// writeLayers writes (or copies) every layer's blob and fills in its info.
// Two layers are written at once; each compresses on every core, so that one
// large store path keeps them all busy too.
// With stream, the layers made from the store are compressed only to learn
// their digests, and recorded (writeRecord) instead of stored.
func writeLayers(l *layout.Layout, jobs []*layerJob, alg compress.Algorithm, stream bool) error {
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, j *layerJob) {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = writeLayer(l, j, alg, stream)
		}(i, j)
	}
	wg.Wait()
	return errors.Join(errs...)
}

func writeLayer(l *layout.Layout, j *layerJob, alg compress.Algorithm, stream bool) error {
	if j.from != "" {
		// A link, not a copy: the layer's bytes stay in its own store path.
		if err := l.LinkBlob(filepath.Join(j.from, LayerBlobFile), j.info.Digest, j.info.Size); err != nil {
			return fmt.Errorf("layer %s: %w", j.from, err)
		}
		return nil
	}
	var res compress.Result
	var err error
	if stream {
		res, err = compress.Encode(io.Discard, alg, func(w io.Writer) error { return layer.Write(w, j.spec) })
		j.streamed = &res
	} else {
		res, err = WriteLayerBlob(l, j.spec, alg)
	}
	if err != nil {
		return err
	}
	j.info = LayerInfo{MediaType: res.MediaType, Digest: res.Digest, Size: res.Size, DiffID: res.DiffID, Paths: j.spec.StorePaths}
	return nil
}

// WriteLayerBlob writes one layer into l's blobs in one pass.
func WriteLayerBlob(l *layout.Layout, s layer.Spec, alg compress.Algorithm) (compress.Result, error) {
	b, err := l.NewBlob()
	if err != nil {
		return compress.Result{}, err
	}
	res, err := compress.Encode(b, alg, func(w io.Writer) error { return layer.Write(w, s) })
	if err != nil {
		b.Abort()
		return compress.Result{}, err
	}
	if err := b.Commit(res.Digest); err != nil {
		return compress.Result{}, err
	}
	return res, nil
}

// writeRecord writes stream.json: every layer made from the store, with what
// makes it again. The paths the builder read under a test root are recorded
// as store paths.
func writeRecord(dir string, jobs []*layerJob, alg compress.Algorithm) error {
	rec := stream.Record{Version: stream.Version, Generator: stream.Generator()}
	for _, j := range jobs {
		if j.streamed != nil {
			rec.Layers = append(rec.Layers, stream.FromSpec(j.spec, alg, *j.streamed))
		}
	}
	return stream.Write(dir, rec)
}

// rootComment describes the root layer in the image's history.
func rootComment(p *parsed) string {
	parts := []string{"root:"}
	if len(p.copyToRoot) > 0 {
		parts = append(parts, "copyToRoot ("+p.copyToRootMode+") "+strings.Join(p.copyToRoot, " ")+";")
	}
	if p.accounts != nil && p.accounts.Given {
		parts = append(parts, "users and groups;")
	}
	parts = append(parts, "dirs, files")
	return strings.Join(parts, " ")
}

// checkPatternHits refuses a perms pattern that matched nothing: most likely
// a typo, which would otherwise leave the intended files as they were.
func checkPatternHits(perms []layer.Perm) error {
	for _, pm := range perms {
		if pm.IsPattern() && pm.Hits.Load() == 0 {
			pat := pm.Glob
			if pm.Regex != nil {
				pat = "regex " + strings.TrimSuffix(strings.TrimPrefix(pm.Regex.String(), "^(?:"), ")$")
			} else {
				pat = "glob " + pat
			}
			where := ""
			if pm.Path != "" {
				where = " below " + pm.Path
			}
			return fmt.Errorf("`perms`: the %s matches no path of the image%s; patterns match whole absolute paths, such as \"/var/lib/app(/.*)?\" or \"/etc/*.conf\"", pat, where)
		}
	}
	return nil
}
