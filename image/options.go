// Package image builds an OCI image layout from a Nix closure: the builder of
// buildImage and buildLayer derivations (nix/image.nix). Layers are planned by
// image/layering, written by image/layer, compressed by image/compress and
// stored by image/layout.
package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
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

// MaxLayersLimit is the most layers an image may have: overlayfs, which
// docker and podman stack layers with, refuses deeper stacks (docker says
// "max depth exceeded" past 125).
const MaxLayersLimit = 125

// DefaultMaxLayers is buildImage's default (see docs/buildImage.md).
const DefaultMaxLayers = 100

// DefaultCreated is the image's creation time unless given: one second after
// the epoch, as nixpkgs' dockerTools and nix2container write.
const DefaultCreated = "1970-01-01T00:00:01Z"

// Options are buildImage's arguments as the Nix wrapper passes them.
type Options struct {
	Name        string            `json:"name"`
	Tag         string            `json:"tag"`
	Config      json.RawMessage   `json:"config"`
	CopyToRoot  []string          `json:"copyToRoot"`
	Layers      []string          `json:"layers"`
	MaxLayers   int               `json:"maxLayers"`
	Compression string            `json:"compression"`
	Created     string            `json:"created"`
	OS          string            `json:"os"`
	Arch        string            `json:"arch"`
	Perms       []PermJSON        `json:"perms"`
	Annotations map[string]string `json:"annotations"`
	// FromImage is an OCI image layout whose image the new one is built on
	// (its layers first, its config inherited); "" for none.
	FromImage string `json:"fromImage,omitempty"`
	// FromImageName is the base's registry reference, when known (pullImage):
	// recorded as org.opencontainers.image.base.name, where push mounts the
	// base's layers from.
	FromImageName string `json:"fromImageName,omitempty"`
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
	fromImage   string
	baseName    string
}

var (
	// The distribution spec's grammar: a repository name of path components,
	// optionally behind a registry host (with a port), and a tag.
	nameComponent = `[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*`
	hostPart      = `(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?`
	nameRe        = regexp.MustCompile(`^` + hostPart + nameComponent + `(?:/` + nameComponent + `)*$`)
	tagRe         = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

// CheckName checks an image name against the distribution spec's grammar.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("`name` is required: the image's repository name, such as \"hello\" or \"registry.example/team/hello\"")
	}
	if len(name) > 255 || !nameRe.MatchString(name) {
		return fmt.Errorf("`name` %q is not a valid image name: path components of lower-case letters and digits separated by '.', '_', '__' or '-', joined by '/', optionally after a registry host (\"registry.example:5000/team/app\")", name)
	}
	return nil
}

// CheckTag checks a tag against the distribution spec's grammar.
func CheckTag(tag string) error {
	if !tagRe.MatchString(tag) {
		return fmt.Errorf("`tag` %q is not a valid tag: 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'", tag)
	}
	return nil
}

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
	for i, p := range in {
		if !strings.HasPrefix(p.Path, "/") {
			return nil, fmt.Errorf("`perms` element %d: path %q must be an absolute path in the image", i, p.Path)
		}
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
		if (p.UID != nil && *p.UID < 0) || (p.GID != nil && *p.GID < 0) {
			return nil, fmt.Errorf("`perms` %s: uid and gid must not be negative", p.Path)
		}
		out = append(out, lp)
	}
	return out, nil
}

// Platform normalises os and arch exactly as bundles do (options.Platform:
// a GOOS value; a GOARCH value or a Nix spelling), with the ARM variant the
// Nix spelling implies.
func Platform(osName, arch string) (v1.Platform, error) {
	goos, goarch, err := options.Platform(osName, arch, "")
	if err != nil {
		return v1.Platform{}, err
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

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// configKeys are the config fields buildImage accepts (image-spec names).
var configKeys = []string{"User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels", "StopSignal", "ArgsEscaped"}

// ParseConfig decodes the `config` argument strictly: an unknown field is an
// error that suggests the image-spec spelling.
func ParseConfig(raw json.RawMessage) (v1.ImageConfig, error) {
	var c v1.ImageConfig
	if len(raw) == 0 || string(raw) == "null" {
		return c, nil
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return c, fmt.Errorf("`config` must be an attribute set: %w", err)
	}
	for k := range keys {
		if !contains(configKeys, k) {
			return c, fmt.Errorf("`config`: unknown field %q%s; valid fields are %s", k, suggestKey(k), strings.Join(configKeys, ", "))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("`config`: %w", err)
	}
	return c, nil
}

func suggestKey(k string) string {
	for _, c := range configKeys {
		if strings.EqualFold(c, k) || strings.EqualFold(strings.ReplaceAll(k, "_", ""), c) {
			return fmt.Sprintf(" (did you mean %q?)", c)
		}
	}
	return ""
}

func parseOptions(o *Options) (*parsed, error) {
	p := &parsed{name: o.Name, tag: o.Tag, copyToRoot: o.CopyToRoot, layers: o.Layers, annotations: o.Annotations, fromImage: o.FromImage, baseName: o.FromImageName}
	if err := CheckName(o.Name); err != nil {
		return nil, err
	}
	if err := CheckTag(o.Tag); err != nil {
		return nil, err
	}
	var err error
	if p.config, err = ParseConfig(o.Config); err != nil {
		return nil, err
	}
	p.maxLayers = o.MaxLayers
	if p.maxLayers == 0 {
		p.maxLayers = DefaultMaxLayers
	}
	if p.maxLayers < 1 || p.maxLayers > MaxLayersLimit {
		return nil, fmt.Errorf("`maxLayers` must be between 1 and %d (overlayfs stacks at most about 127 layers), not %d", MaxLayersLimit, p.maxLayers)
	}
	if o.Compression == "" {
		o.Compression = string(compress.Gzip)
	}
	if p.compression, err = compress.Parse(o.Compression); err != nil {
		return nil, fmt.Errorf("`compression`: %w", err)
	}
	if o.Created == "" {
		o.Created = DefaultCreated
	}
	if p.created, err = time.Parse(time.RFC3339, o.Created); err != nil {
		return nil, fmt.Errorf("`created` %q is not an RFC 3339 time such as %q: %w", o.Created, DefaultCreated, err)
	}
	p.created = p.created.UTC()
	arch := o.Arch
	if arch == "" {
		arch = "amd64"
	}
	if p.platform, err = Platform(o.OS, arch); err != nil {
		return nil, err
	}
	if p.perms, err = parsePerms(o.Perms); err != nil {
		return nil, err
	}
	return p, nil
}
