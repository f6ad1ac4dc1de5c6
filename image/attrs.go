package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ocitools/ocitools/derivation"
)

// closureKey is the exportReferencesGraph key nix/image.nix uses, as
// buildContainer does.
const closureKey = "closure"

// maxAttrsSize bounds the structured-attrs file read into memory.
const maxAttrsSize = 256 << 20

// Attrs is what build-image and build-layer read from .attrs.json.
type Attrs struct {
	// System is the derivation's Nix system (the default arch's CPU).
	System  string
	Outputs map[string]string
	Closure *derivation.Closure
	Options json.RawMessage
}

// ReadAttrs reads a structured-attrs file: the outputs, the closure
// (exportReferencesGraph.closure) and the options under key.
func ReadAttrs(file, key string) (*Attrs, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("reading structured attrs: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxAttrsSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading structured attrs: %w", err)
	}
	if len(data) > maxAttrsSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, maxAttrsSize)
	}
	a, err := ParseAttrs(data, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return a, nil
}

// ParseAttrs decodes structured attrs.
func ParseAttrs(data []byte, key string) (*Attrs, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("structured attrs are not valid JSON: %w", err)
	}
	a := &Attrs{Options: raw[key]}
	if s, ok := raw["system"]; ok {
		if err := json.Unmarshal(s, &a.System); err != nil {
			return nil, fmt.Errorf("structured attrs: system: %w", err)
		}
	}
	if len(a.Options) == 0 || string(a.Options) == "null" {
		return nil, fmt.Errorf("structured attrs: no %q attribute", key)
	}
	if o, ok := raw["outputs"]; ok {
		if err := json.Unmarshal(o, &a.Outputs); err != nil {
			return nil, fmt.Errorf("structured attrs: outputs: %w", err)
		}
	}
	var items []derivation.PathInfoJSON
	c, ok := raw[closureKey]
	if !ok {
		return nil, fmt.Errorf("structured attrs: no %q key (exportReferencesGraph.%s must list the closure roots)", closureKey, closureKey)
	}
	if err := json.Unmarshal(c, &items); err != nil {
		return nil, fmt.Errorf("structured attrs: %s: %w", closureKey, err)
	}
	closure, err := derivation.NewClosure(items)
	if err != nil {
		return nil, err
	}
	a.Closure = closure
	return a, nil
}

// Out is the "out" output.
func (a *Attrs) Out() (string, error) {
	out := a.Outputs["out"]
	if out == "" {
		return "", errors.New(`structured attrs: no "out" in outputs`)
	}
	return out, nil
}
