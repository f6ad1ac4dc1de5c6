// Package sbom writes the software bill of materials of a build result from
// the closure the builder copies: one component per store path, with the NAR
// hash and references Nix recorded, and what evaluation knows about the
// packages (pname, version, licences, homepage) where the Nix side passed it.
// The output is a function of its input only (no clock, no randomness), so
// that nix-build --check reproduces it byte for byte.
package sbom

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/internal/readfile"
	"github.com/ocitools/ocitools/nar"
)

// CycloneDXFile and SPDXFile are the names of the SBOM files beside a bundle's
// config.json or an image layout's index.json.
const (
	CycloneDXFile = "sbom.cdx.json"
	SPDXFile      = "sbom.spdx.json"
)

// The formats the sbom attribute may ask for.
const (
	FormatCycloneDX = "cyclonedx"
	FormatSPDX      = "spdx"
)

// AttrKey is the structured attribute the Nix side passes the SBOM request in
// (absent or null: no SBOM).
const AttrKey = "sbom"

// Attr is the SBOM request from the Nix side.
type Attr struct {
	// Formats are the files to write: "cyclonedx", "spdx" or both.
	Formats []string `json:"formats"`
	// Roots are the store paths the arguments named (the closure roots), on
	// which the subject depends directly.
	Roots []string `json:"roots"`
	// Metadata is what evaluation knows, keyed by output path.
	Metadata map[string]Meta `json:"metadata"`
}

// Meta is what evaluation knows about one output path: the derivation's
// attributes, as nix/lib.nix's sbomMetadata collects them.
type Meta struct {
	Pname       string            `json:"pname,omitempty"`
	Version     string            `json:"version,omitempty"`
	Description string            `json:"description,omitempty"`
	Homepage    string            `json:"homepage,omitempty"`
	Licenses    []License         `json:"licenses,omitempty"`
	Identifiers map[string]string `json:"identifiers,omitempty"`
}

// License is one element of meta.license: its SPDX id when it has one, else
// its name.
type License struct {
	SPDX string `json:"spdxId,omitempty"`
	Name string `json:"name,omitempty"`
	URL  string `json:"url,omitempty"`
}

// Subject is what the SBOM describes: an image or a bundle.
type Subject struct {
	// Kind is "image" or "bundle".
	Kind    string
	Name    string
	Version string
}

// Input is one SBOM to write.
type Input struct {
	Subject Subject
	// Paths are every store path of the result, each once, closed under
	// references.
	Paths []*derivation.PathInfo
	Attr  Attr
	// Created is the result's fixed creation time (RFC 3339), which SPDX
	// requires; "" is DefaultCreated.
	Created string
	// Base is the image the result is built on (fromImage), or nil.
	Base *Base
}

// Base is a base image: its layers are in the image, but what they hold was
// not built here, so it is one component, named by its manifest digest.
type Base struct {
	// Name is its registry reference when known (pullImage), else "".
	Name   string
	Digest string // sha256:..., or "" (a Docker archive base has none)
}

// baseRef is the base image's bom-ref and element id.
const baseRef = "base-image"

// DefaultCreated is the time of results that have none (bundles), the one
// buildImage defaults to.
const DefaultCreated = "1970-01-01T00:00:01Z"

// DecodeAttr reads the sbom attribute; nil when the build asks for no SBOM.
func DecodeAttr(raw json.RawMessage) (*Attr, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var a Attr
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("the %q attribute: %w", AttrKey, err)
	}
	if len(a.Formats) == 0 {
		return nil, fmt.Errorf("the %q attribute: no formats (valid: %q, %q)", AttrKey, FormatCycloneDX, FormatSPDX)
	}
	for _, f := range a.Formats {
		if f != FormatCycloneDX && f != FormatSPDX {
			return nil, fmt.Errorf("the %q attribute: unknown format %q (valid: %q, %q)", AttrKey, f, FormatCycloneDX, FormatSPDX)
		}
	}
	return &a, nil
}

// check refuses roots the result does not hold: the Nix side passes the
// closure roots, so anything else is a mismatch between the wrapper and the
// builder. Metadata may name more paths (every output of a derivation): only
// those in the closure are used.
func (in *Input) check() error {
	have := make(map[string]bool, len(in.Paths))
	for _, p := range in.Paths {
		have[p.Path()] = true
	}
	for _, p := range in.Attr.Roots {
		if !have[p] {
			return fmt.Errorf("sbom: root %s is not in the closure", p)
		}
	}
	if !slices.IsSortedFunc(in.Paths, func(a, b *derivation.PathInfo) int { return strings.Compare(a.Path(), b.Path()) }) {
		return fmt.Errorf("sbom: store paths are not sorted")
	}
	return nil
}

// component is what both formats say about one store path.
type component struct {
	path, name, version string
	narHash             string
	narSize             uint64
	refs                []string // without the path itself
	meta                *Meta
}

// components resolves every store path's name, version and metadata.
func (in *Input) components() []component {
	out := make([]component, 0, len(in.Paths))
	for _, p := range in.Paths {
		c := component{path: p.Path(), narHash: nar.Format(p.NarHash), narSize: p.NarSize}
		c.name, c.version = ParseName(storePathName(c.path))
		if m, ok := in.Attr.Metadata[c.path]; ok {
			c.meta = &m
			if m.Pname != "" {
				c.name = m.Pname
			}
			if m.Version != "" {
				c.version = m.Version
			}
		}
		for _, r := range p.References {
			// A store path referring to itself is not a dependency.
			if r != c.path {
				c.refs = append(c.refs, r)
			}
		}
		out = append(out, c)
	}
	return out
}

// roots are the subject's direct dependencies: the roots the Nix side gave,
// else every path no other path refers to.
func (in *Input) roots() []string {
	if len(in.Attr.Roots) > 0 {
		r := slices.Clone(in.Attr.Roots)
		slices.Sort(r)
		return slices.Compact(r)
	}
	referred := map[string]bool{}
	for _, p := range in.Paths {
		for _, r := range p.References {
			if r != p.Path() {
				referred[r] = true
			}
		}
	}
	var r []string
	for _, p := range in.Paths {
		if !referred[p.Path()] {
			r = append(r, p.Path())
		}
	}
	return r
}

// Write writes the files the request asks for into dir.
func Write(dir string, in *Input) error {
	for _, f := range in.Attr.Formats {
		var data []byte
		var err error
		name := CycloneDXFile
		if f == FormatSPDX {
			name = SPDXFile
			data, err = SPDX(in)
		} else {
			data, err = CycloneDX(in)
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o444); err != nil {
			return fmt.Errorf("sbom: %w", err)
		}
	}
	return nil
}

// MaxSize bounds an SBOM read from a layout, a bundle or a registry (a
// component takes about 700 bytes: this is far above any closure).
const MaxSize = 64 << 20

// ErrNoSBOM says that there is no SBOM (no file, no referrer).
var ErrNoSBOM = errors.New("no SBOM")

// IndexDir is the directory of a multi-arch layout (buildIndex) that holds
// its images' SBOMs, IndexDir/HEX.cdx.json for the image manifest sha256:HEX.
const IndexDir = "sbom"

// IndexFile is the path, in a multi-arch layout, of the SBOM of the image
// manifest with the given digest.
func IndexFile(manifest digest.Digest) string {
	return filepath.Join(IndexDir, manifest.Encoded()+".cdx.json")
}

// ReadFile reads DIR/sbom.cdx.json (a regular file, not a link, bounded) and
// checks it against the CycloneDX 1.6 schema; ErrNoSBOM (wrapped) when there
// is none.
func ReadFile(dir string) ([]byte, error) {
	return ReadPath(dir, CycloneDXFile)
}

// ReadPath is ReadFile for the file rel below dir.
func ReadPath(dir, rel string) ([]byte, error) {
	data, err := ReadPathUnchecked(dir, rel)
	if err != nil {
		return nil, err
	}
	if err := Validate(data); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, rel), err)
	}
	return data, nil
}

// ReadPathUnchecked is ReadPath without the schema check, for a caller that
// checks only the documents it is about to use (compiling the schema costs
// tens of milliseconds, most of a push that finds everything in place).
func ReadPathUnchecked(dir, rel string) ([]byte, error) {
	data, err := readfile.Regular(filepath.Join(dir, rel), MaxSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoSBOM)
	}
	return data, err
}
