// Package derivation reads the build environment Nix gives a structured-attrs
// builder: the output paths, the closure exported by exportReferencesGraph and the
// builder's arguments (the attribute each builder names), as typed values, for
// every builder (build, build-image, build-layer, plan-layers).
package derivation

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nix-community/go-nix/pkg/storepath"

	"github.com/ocitools/ocitools/internal/readfile"
)

// attrsFileName is the file Nix writes into the build directory when
// __structuredAttrs is set.
const attrsFileName = ".attrs.json"

// closureKey is the exportReferencesGraph key the Nix wrapper uses.
const closureKey = "closure"

// ContainerKey is the attribute that carries buildContainer's arguments
// (nix/oci-tools.nix); the image builders name theirs ("image", "layer",
// "plan"). It cannot be "args": that attribute is the builder's own argv.
const ContainerKey = "container"

// Attrs is the part of .attrs.json a builder uses: build, build-image,
// build-layer and plan-layers read it alike.
type Attrs struct {
	Name    string
	System  string
	Outputs map[string]string
	// Closure is every store path reachable from the roots, each once.
	Closure *Closure
	// Options is the raw attribute holding the builder's arguments, decoded
	// by options (bundles) or image (images).
	Options json.RawMessage
	// LayerClosure is the closure of buildImage's explicit layers
	// (exportReferencesGraph.layerClosure), for the SBOM; nil when absent.
	LayerClosure []PathInfoJSON
	// SBOM is the raw "sbom" attribute, decoded by the sbom package (absent
	// or null: no SBOM).
	SBOM json.RawMessage
}

// Out returns the path of the "out" output.
func (a *Attrs) Out() (string, error) {
	out, ok := a.Outputs["out"]
	if !ok || out == "" {
		return "", errors.New(`structured attrs: no "out" in outputs`)
	}
	return out, nil
}

// rawAttrs mirrors the JSON Nix writes.
type rawAttrs struct {
	Name    string            `json:"name"`
	System  string            `json:"system"`
	Outputs map[string]string `json:"outputs"`
	Closure []PathInfoJSON    `json:"closure"`
	SBOM    json.RawMessage   `json:"sbom"`
	// LayerClosure is exportReferencesGraph.layerClosure: the closure of
	// buildImage's explicit layers, for the SBOM (absent: none).
	LayerClosure []PathInfoJSON `json:"layerClosure"`
}

// FindAttrsFile returns the structured-attrs file of the current build. Some Nix
// versions set NIX_ATTRS_JSON_FILE to the host-side path, which does not exist
// inside the sandbox (NixOS/nix#6736), so the copy in the build directory
// (NIX_BUILD_TOP, else the working directory) is the fallback.
func FindAttrsFile() (string, error) {
	if p := os.Getenv("NIX_ATTRS_JSON_FILE"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	var candidates []string
	if top := os.Getenv("NIX_BUILD_TOP"); top != "" {
		candidates = append(candidates, filepath.Join(top, attrsFileName))
	}
	candidates = append(candidates, attrsFileName)
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", errors.New("no structured attrs found: NIX_ATTRS_JSON_FILE is unset or missing and there is no .attrs.json in the build directory (this command is the builder of a derivation with __structuredAttrs = true)")
}

// AttrsLimit bounds a structured-attrs file: the closure takes about 300
// bytes per store path, so this is far above any real closure.
const AttrsLimit = 64 << 20

// ReadAttrsFile reads and checks a structured-attrs file. Outside a Nix build
// the path is the user's (build --attrs): only a regular file (a symlink to one
// is followed) of at most AttrsLimit bytes is read, so that a FIFO does not
// block and a device does not exhaust memory.
func ReadAttrsFile(path, key string) (*Attrs, error) {
	data, err := readfile.Following(path, AttrsLimit)
	if err != nil {
		return nil, fmt.Errorf("reading structured attrs: %w", err)
	}
	a, err := ParseAttrs(data, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// ParseAttrs decodes structured attrs, checks the closure, and takes the
// builder's arguments from the attribute key.
func ParseAttrs(data []byte, key string) (*Attrs, error) {
	var raw rawAttrs
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("structured attrs are not valid JSON: %w", err)
	}
	var byKey map[string]json.RawMessage
	if err := json.Unmarshal(data, &byKey); err != nil {
		return nil, fmt.Errorf("structured attrs are not valid JSON: %w", err)
	}
	options := byKey[key]
	if raw.Closure == nil {
		return nil, fmt.Errorf("structured attrs: no %q key (exportReferencesGraph.%s must list the closure roots)", closureKey, closureKey)
	}
	closure, err := NewClosure(raw.Closure)
	if err != nil {
		return nil, err
	}
	if len(options) == 0 || string(options) == "null" {
		return nil, fmt.Errorf("structured attrs: no %q attribute with the builder's arguments", key)
	}
	return &Attrs{
		Name:         raw.Name,
		System:       raw.System,
		Outputs:      raw.Outputs,
		Closure:      closure,
		Options:      options,
		SBOM:         raw.SBOM,
		LayerClosure: raw.LayerClosure,
	}, nil
}

// validateStorePath checks that p is exactly an absolute store path (no
// trailing sub-path) with go-nix.
func validateStorePath(p string) (*storepath.StorePath, error) {
	// go-nix reports a sub-path as an invalid character; say what it is.
	if rest, ok := strings.CutPrefix(p, storepath.StoreDir+"/"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return nil, fmt.Errorf("%q is not a valid store path: it has a trailing path %q (exportReferencesGraph needs whole store paths)", p, rest[i:])
		}
	}
	sp, err := storepath.FromAbsolutePath(p)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid store path: %w", p, err)
	}
	if sp.Absolute() != p {
		return nil, fmt.Errorf("%q is not a valid store path: it has a trailing path %q", p, p[len(sp.Absolute()):])
	}
	return sp, nil
}
