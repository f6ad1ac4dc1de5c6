// Package image builds an OCI image layout from a Nix closure: the builder of
// buildImage and buildLayer derivations (nix/image.nix). Layers are planned by
// image/layering, written by image/layer, compressed by image/compress and
// stored by image/layout.
package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/compress"
	"github.com/ocitools/ocitools/image/layer"
	"github.com/ocitools/ocitools/options"
)

// OptionsKey is the structured attribute holding buildImage's arguments.
const OptionsKey = "image"

// LayerOptionsKey is the structured attribute holding buildLayer's arguments.
const LayerOptionsKey = "layer"

// The argument tables of buildImage and buildLayer (options/known.json's
// tables), which nix/image.nix checks at evaluation: every limit, default and
// list of valid values is there, once.
var (
	imageTable = options.TableOf("buildImage")
	layerTable = options.TableOf("buildLayer")
)

// Options are buildImage's arguments as the Nix wrapper passes them, after
// the table's checks and defaults.
type Options struct {
	Name        string            `json:"name"`
	Tag         *string           `json:"tag"`
	Config      json.RawMessage   `json:"config"`
	CopyToRoot  json.RawMessage   `json:"copyToRoot"`
	Layers      []string          `json:"layers"`
	MaxLayers   int               `json:"maxLayers"`
	Compression string            `json:"compression"`
	Created     string            `json:"created"`
	OS          string            `json:"os"`
	Arch        string            `json:"arch"`
	Perms       []PermJSON        `json:"perms"`
	Annotations map[string]string `json:"annotations"`
}

// LayerOptions are buildLayer's arguments.
type LayerOptions struct {
	Layers      []string   `json:"layers"`
	Compression string     `json:"compression"`
	Perms       []PermJSON `json:"perms"`
}

// PermJSON is one `perms` element: mode is an octal string ("0755"), because
// Nix has no octal integers (0755 would be seven hundred and fifty-five).
type PermJSON struct {
	Path      string `json:"path"`
	Mode      string `json:"mode,omitempty"`
	UID       *int   `json:"uid,omitempty"`
	GID       *int   `json:"gid,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
}

// parsed are checked options.
type parsed struct {
	name, tag   string
	config      v1.ImageConfig
	copyToRoot  []string
	layers      []string
	maxLayers   int
	compression compress.Algorithm
	created     time.Time
	platform    v1.Platform
	perms       []layer.Perm
	annotations map[string]string
}

// CheckName checks an image name against the distribution spec's grammar
// (known.json's imageName shape).
func CheckName(name string) error { return options.CheckShape("imageName", "name", name) }

// CheckTag checks a tag against the distribution spec's grammar (known.json's
// imageTag shape).
func CheckTag(tag string) error { return options.CheckShape("imageTag", "tag", tag) }

// ParseMode reads an octal mode string.
func ParseMode(s string) (int64, error) {
	m, err := strconv.ParseInt(s, 8, 32)
	if err != nil || m < 0 || m > 0o7777 {
		return 0, fmt.Errorf("mode %q is not an octal mode between \"0000\" and \"7777\" (such as \"0755\")", s)
	}
	return m, nil
}

func parsePerms(in []PermJSON) ([]layer.Perm, error) {
	out := make([]layer.Perm, 0, len(in))
	seen := map[string]bool{}
	for _, p := range in {
		if seen[p.Path] {
			return nil, fmt.Errorf("`perms`: %s is given twice", p.Path)
		}
		seen[p.Path] = true
		lp := layer.Perm{Path: p.Path, UID: p.UID, GID: p.GID, Recursive: p.Recursive}
		if p.Mode != "" {
			m, err := ParseMode(p.Mode)
			if err != nil {
				return nil, fmt.Errorf("`perms` %s: %w", p.Path, err)
			}
			lp.Mode = &m
		}
		out = append(out, lp)
	}
	return out, nil
}

// Platform normalises os and arch exactly as bundles do (options.Platform:
// a GOOS value; a GOARCH value or a Nix spelling; an empty arch is this
// program's), with the ARM variant the Nix spelling implies.
func Platform(osName, arch string) (v1.Platform, error) { return platform(osName, arch, "") }

// platform is Platform with the build's Nix system, whose CPU an empty arch
// defaults to (the rule buildContainer follows too).
func platform(osName, arch, system string) (v1.Platform, error) {
	goos, goarch, err := options.Platform(osName, arch, system)
	if err != nil {
		return v1.Platform{}, err
	}
	if arch == "" {
		arch, _, _ = strings.Cut(system, "-")
	}
	return v1.Platform{OS: goos, Architecture: goarch, Variant: armVariant[arch]}, nil
}

// armVariant is the platform variant a Nix CPU name implies (image-spec's
// platform.variant; arm64's default v8 is left out, as registries do).
var armVariant = map[string]string{
	"armv5tel": "v5",
	"armv6l":   "v6",
	"armv7l":   "v7",
	"armv7a":   "v7",
}

// ParseConfig decodes the `config` argument, checked by the table's
// imageConfig rows, into the image-spec type: an Env attribute set becomes
// "NAME=value" strings sorted by name, ExposedPorts and Volumes lists become
// sets.
func ParseConfig(raw json.RawMessage) (v1.ImageConfig, error) {
	var c v1.ImageConfig
	if len(raw) == 0 || string(raw) == "null" {
		return c, nil
	}
	v, err := imageTable.CheckArgument("config", raw)
	if err != nil {
		return c, err
	}
	data := v.(map[string]any)
	if env, ok := data["Env"].(map[string]any); ok {
		list := make([]any, 0, len(env))
		for _, k := range slices.Sorted(maps.Keys(env)) {
			list = append(list, fmt.Sprintf("%s=%v", k, env[k]))
		}
		data["Env"] = list
	}
	for _, k := range []string{"ExposedPorts", "Volumes"} {
		if l, ok := data[k].([]any); ok {
			set := map[string]any{}
			for _, e := range l {
				set[e.(string)] = struct{}{}
			}
			data[k] = set
		}
	}
	full, err := json.Marshal(data)
	if err != nil {
		return c, fmt.Errorf("`config`: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(full))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("`config`: %w", err)
	}
	return c, nil
}

// parseOptions reads buildImage's arguments: the table's rules and defaults
// (as nix/image.nix applies them), then what only the builder checks. system
// is the build's Nix system, whose CPU is the default arch (as for bundles).
func parseOptions(data []byte, system string) (*parsed, error) {
	var o Options
	if err := imageTable.Decode(data, &o); err != nil {
		return nil, err
	}
	if o.Tag == nil {
		return nil, errors.New("`tag` is null: the builder needs a tag (nix/image.nix derives one from the inputs)")
	}
	p := &parsed{name: o.Name, tag: *o.Tag, layers: o.Layers, maxLayers: o.MaxLayers, annotations: o.Annotations}
	var err error
	if p.config, err = ParseConfig(o.Config); err != nil {
		return nil, err
	}
	if p.copyToRoot, err = stringOrList(o.CopyToRoot); err != nil {
		return nil, fmt.Errorf("`copyToRoot`: %w", err)
	}
	if p.compression, err = compress.Parse(o.Compression); err != nil {
		return nil, fmt.Errorf("`compression`: %w", err)
	}
	if p.created, err = time.Parse(time.RFC3339, o.Created); err != nil {
		return nil, fmt.Errorf("`created` %q is not an RFC 3339 time: %w", o.Created, err)
	}
	p.created = p.created.UTC()
	if p.platform, err = platform(o.OS, o.Arch, system); err != nil {
		return nil, err
	}
	if p.perms, err = parsePerms(o.Perms); err != nil {
		return nil, err
	}
	return p, nil
}

// stringOrList reads a package argument: one store path or a list of them.
func stringOrList(raw json.RawMessage) ([]string, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	err := json.Unmarshal(raw, &list)
	return list, err
}
