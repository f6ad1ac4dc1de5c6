package image

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/image/compress"
	"github.com/ocitools/ocitools/image/layer"
	"github.com/ocitools/ocitools/rootfs"
)

// BuildLayer writes a buildLayer output: the compressed layer (blob) holding
// the closure minus the paths of the layers it sits on, and layer.json.
func BuildLayer(req Request) (err error) {
	o, alg, perms, err := parseLayerOptions(req.Options)
	if err != nil {
		return fmt.Errorf("build-layer: %w", err)
	}
	exclude := map[string]bool{}
	for i, dir := range o.Layers {
		info, err := ReadLayerInfo(dir)
		if err != nil {
			return fmt.Errorf("build-layer: `layers` element %d: %w", i, err)
		}
		for _, p := range info.Paths {
			exclude[p] = true
		}
	}
	var paths []string
	for _, p := range req.Closure.StorePaths() {
		if !exclude[p] {
			paths = append(paths, p)
		}
	}
	if o.Paths != nil {
		if paths, err = onlyPaths(req.Closure, o.Paths, exclude); err != nil {
			return fmt.Errorf("build-layer: %w", err)
		}
	}
	if len(paths) == 0 {
		return fmt.Errorf("build-layer: the layer would be empty: every path of deps is in its `layers`")
	}
	sort.Strings(paths)
	if err := checkPerms(perms, req.Closure, exclude, nil, nil, req.Root); err != nil {
		return fmt.Errorf("build-layer: %w", err)
	}
	if err := os.Mkdir(req.Out, 0o755); err != nil {
		return fmt.Errorf("build-layer: %w", err)
	}
	defer func() {
		if err != nil {
			_ = rootfs.RemoveAll(req.Out)
		}
	}()
	f, err := os.OpenFile(filepath.Join(req.Out, LayerBlobFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("build-layer: %w", err)
	}
	s := layer.Spec{StorePaths: paths, Perms: perms, Root: req.Root}
	res, err := compress.Encode(f, alg, func(w io.Writer) error { return layer.Write(w, s) })
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("build-layer: %w", err)
	}
	info := LayerInfo{MediaType: res.MediaType, Digest: res.Digest, Size: res.Size, DiffID: res.DiffID, Paths: paths}
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("build-layer: %w", err)
	}
	if err := os.WriteFile(filepath.Join(req.Out, LayerInfoFile), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("build-layer: %w", err)
	}
	return nil
}

// parseLayerOptions reads buildLayer's arguments: the table's rules and
// defaults (as nix/image.nix applies them), then the deep checks.
func parseLayerOptions(data []byte) (o LayerOptions, alg compress.Algorithm, perms []layer.Perm, err error) {
	if err = layerTable().Decode(data, &o); err != nil {
		return
	}
	if alg, err = compress.Parse(o.Compression); err != nil {
		err = fmt.Errorf("`compression`: %w", err)
		return
	}
	perms, err = parsePerms(o.Perms, nil)
	return
}

// onlyPaths checks a planned group: each path in the closure, none in the
// layers below.
func onlyPaths(closure *derivation.Closure, want []string, exclude map[string]bool) ([]string, error) {
	seen := map[string]bool{}
	for _, p := range want {
		if _, ok := closure.Lookup(p); !ok {
			return nil, fmt.Errorf("`paths`: %s is not in the closure of the layer's deps", p)
		}
		if exclude[p] || seen[p] {
			return nil, fmt.Errorf("`paths`: %s is listed twice or is in a layer below", p)
		}
		seen[p] = true
	}
	return append([]string(nil), want...), nil
}
