package image

import (
	"fmt"
	"time"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/nar"
	"github.com/ocitools/ocitools/sbom"
)

// layerClosureKey is the exportReferencesGraph key nix/image.nix gives the
// explicit layers under: their closure holds the NAR hash and references of
// each store path they carry, for the SBOM.
const layerClosureKey = "layerClosure"

// sbomInput is the SBOM of an image: every store path its layers hold (the
// automatic layers' closure and the explicit layers' paths), checked to be
// closed under references, and the base image (fromImage) as one component.
// nil when the build asks for none.
func sbomInput(req Request, p *parsed, jobs []*layerJob, base *baseImage) (*sbom.Input, error) {
	attr, err := sbom.DecodeAttr(req.SBOM)
	if err != nil || attr == nil {
		return nil, err
	}
	items := make([]derivation.PathInfoJSON, 0, len(req.Closure.Paths))
	seen := map[string]bool{}
	add := func(pi *derivation.PathInfo) {
		if !seen[pi.Path()] {
			seen[pi.Path()] = true
			items = append(items, derivation.PathInfoJSON{Path: pi.Path(), NarHash: nar.Format(pi.NarHash), NarSize: pi.NarSize, References: pi.References})
		}
	}
	for _, pi := range req.Closure.Paths {
		add(pi)
	}
	var layerGraph *derivation.Closure
	for _, j := range jobs {
		if j.from == "" {
			continue
		}
		if layerGraph == nil {
			if layerGraph, err = derivation.NewClosure(req.LayerClosure); err != nil {
				return nil, fmt.Errorf("%s: %w", layerClosureKey, err)
			}
		}
		for _, sp := range j.info.Paths {
			pi, ok := layerGraph.Lookup(sp)
			if !ok {
				return nil, fmt.Errorf("sbom: %s of the layer %s is not in exportReferencesGraph.%s", sp, j.from, layerClosureKey)
			}
			add(pi)
		}
	}
	all, err := derivation.NewClosure(items)
	if err != nil {
		return nil, fmt.Errorf("sbom: the image's store paths are not closed under references (a layer lacks a dependency): %w", err)
	}
	in := &sbom.Input{
		Subject: sbom.Subject{Kind: "image", Name: p.name, Version: p.tag},
		Paths:   all.Paths,
		Attr:    *attr,
		Created: p.created.UTC().Format(time.RFC3339Nano),
	}
	if base != nil {
		name := p.baseName
		if name == "" {
			name = base.tag
		}
		in.Base = &sbom.Base{Name: name, Digest: base.manifest.String()}
	}
	return in, nil
}
