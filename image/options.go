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
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/compress"
	"github.com/ocitools/ocitools/image/layer"
	"github.com/ocitools/ocitools/internal/accounts"
	"github.com/ocitools/ocitools/options"
)

// OptionsKey is the structured attribute holding buildImage's arguments.
const OptionsKey = "image"

// LayerOptionsKey is the structured attribute holding buildLayer's arguments.
const LayerOptionsKey = "layer"

// imageTable and layerTable are the argument tables of buildImage and
// buildLayer (options/known.json's tables, built when first used), which
// nix/image.nix checks at evaluation: every limit, default and list of valid
// values is there, once.
func imageTable() *options.Table { return options.TableOf("buildImage") }
func layerTable() *options.Table { return options.TableOf("buildLayer") }

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
	// FromImage is an OCI image layout whose image the new one is built on
	// (its layers first, its config inherited); "" for none.
	FromImage string `json:"fromImage,omitempty"`
	// FromImageName and FromImageTag pick the base in a fromImage holding
	// several images (dockerTools' pair).
	FromImageName *string `json:"fromImageName"`
	FromImageTag  *string `json:"fromImageTag"`
	// FromImageRef is the base's registry reference, when known (pullImage):
	// recorded as org.opencontainers.image.base.name, where push mounts the
	// base's layers from.
	FromImageRef string `json:"fromImageRef,omitempty"`
	// Layering names the strategy for the automatic layers (known.json's
	// layeringStrategies); a list of groups never reaches the builder
	// (nix/image.nix makes them buildLayer outputs).
	Layering string `json:"layering,omitempty"`
	// Stream: store only the manifest, config and stream.json (image/stream).
	Stream bool `json:"stream,omitempty"`
	// The root layer (image/rootentries.go).
	CopyToRootMode string           `json:"copyToRootMode,omitempty"`
	Users          UserList         `json:"users,omitempty"`
	Groups         []accounts.Group `json:"groups,omitempty"`
	Dirs           []DirJSON        `json:"dirs,omitempty"`
	Files          []FileJSON       `json:"files,omitempty"`
	// InitializeNixDatabase adds a layer with a Nix database registering the
	// image's store paths; NixUID and NixGID own the store and it.
	InitializeNixDatabase bool `json:"initializeNixDatabase"`
	NixUID                int  `json:"nixUid"`
	NixGID                int  `json:"nixGid"`
}

// copyToRootMode values: real files (the default) or buildEnv-style links.
const (
	CopyToRootCopy    = "copy"
	CopyToRootSymlink = "symlink"
)

// DirJSON is one `dirs` element: an empty directory of the root layer.
type DirJSON struct {
	Path string       `json:"path"`
	Mode string       `json:"mode,omitempty"`
	UID  *accounts.ID `json:"uid,omitempty"`
	GID  *accounts.ID `json:"gid,omitempty"`
}

// UnmarshalJSON reads { path, ... } or a path alone, as nix/image.nix
// accepts it.
func (d *DirJSON) UnmarshalJSON(b []byte) error {
	if json.Unmarshal(b, &d.Path) == nil {
		return nil
	}
	type plain DirJSON
	return json.Unmarshal(b, (*plain)(d))
}

// UserList is the `users` argument: a list of users, or an attribute set of
// them by name, as nix/image.nix accepts it (the set's users sorted by name).
type UserList []accounts.User

// UnmarshalJSON reads either form.
func (l *UserList) UnmarshalJSON(b []byte) error {
	var byName map[string]accounts.User
	if json.Unmarshal(b, &byName) == nil {
		*l = nil
		for _, n := range slices.Sorted(maps.Keys(byName)) {
			u := byName[n]
			u.Name = n
			*l = append(*l, u)
		}
		return nil
	}
	return json.Unmarshal(b, (*[]accounts.User)(l))
}

// FileJSON is one `files` element: a file with the given text, a copy of a
// store file (source), or a symlink.
type FileJSON struct {
	Path    string       `json:"path"`
	Text    *string      `json:"text,omitempty"`
	Source  string       `json:"source,omitempty"`
	Symlink string       `json:"symlink,omitempty"`
	Mode    string       `json:"mode,omitempty"`
	UID     *accounts.ID `json:"uid,omitempty"`
	GID     *accounts.ID `json:"gid,omitempty"`
}

// LayerOptions are buildLayer's arguments.
type LayerOptions struct {
	Layers      []string   `json:"layers"`
	Compression string     `json:"compression"`
	Perms       []PermJSON `json:"perms"`
	// Paths, when given, are exactly the store paths the layer holds (a
	// group planned by plan-layers), not the closure of its deps.
	Paths []string `json:"paths,omitempty"`
}

// PermJSON is one `perms` element: mode is an octal string ("0755"), because
// Nix has no octal integers (0755 would be seven hundred and fifty-five).
// uid and gid are numbers or names of the image's users and groups; regex
// or glob select every matching path (below path, when given).
type PermJSON struct {
	Path      string       `json:"path,omitempty"`
	Regex     string       `json:"regex,omitempty"`
	Glob      string       `json:"glob,omitempty"`
	Mode      string       `json:"mode,omitempty"`
	UID       *accounts.ID `json:"uid,omitempty"`
	GID       *accounts.ID `json:"gid,omitempty"`
	Recursive bool         `json:"recursive,omitempty"`
}

// parsed are checked options.
type parsed struct {
	name, tag   string
	config      Config
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
	basePick    basePick
	layering    string
	stream      bool

	copyToRootMode string
	accounts       *accounts.Accounts
	dirs, files    []layer.Entry

	nixDB          bool
	nixUID, nixGID int
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

// parsePerms checks perms, resolving user and group names against a (nil:
// no users, as in buildLayer) and compiling patterns.
func parsePerms(in []PermJSON, a *accounts.Accounts) ([]layer.Perm, error) {
	if a == nil {
		a = &accounts.Accounts{}
	}
	out := make([]layer.Perm, 0, len(in))
	seen := map[string]bool{}
	for i, p := range in {
		where := fmt.Sprintf("`perms` element %d", i)
		lp := layer.Perm{Path: path.Clean(p.Path), Recursive: p.Recursive, Glob: p.Glob}
		switch {
		case p.Regex != "" && p.Glob != "":
			return nil, fmt.Errorf("%s: give regex or glob, not both", where)
		case p.Path == "" && p.Regex == "" && p.Glob == "":
			return nil, fmt.Errorf("%s: give path (an absolute path in the image), regex or glob", where)
		case p.Path != "" && !strings.HasPrefix(p.Path, "/"):
			return nil, fmt.Errorf("%s: path %q must be an absolute path in the image", where, p.Path)
		case p.Glob != "":
			if _, err := path.Match(p.Glob, "/"); err != nil || !strings.HasPrefix(p.Glob, "/") {
				return nil, fmt.Errorf("%s: glob %q must be an absolute path pattern such as \"/etc/*.conf\" (path.Match syntax)", where, p.Glob)
			}
		case p.Regex != "":
			re, err := regexp.Compile(`^(?:` + p.Regex + `)$`)
			if err != nil {
				return nil, fmt.Errorf("%s: regex %q: %w", where, p.Regex, err)
			}
			lp.Regex = re
		}
		if p.Path == "" {
			lp.Path = ""
		}
		if lp.IsPattern() {
			lp.Hits = new(atomic.Int64)
			where += " (" + p.Regex + p.Glob + ")"
		} else {
			where = "`perms` " + p.Path
			if seen[p.Path] {
				return nil, fmt.Errorf("`perms`: %s is given twice", p.Path)
			}
			seen[p.Path] = true
		}
		if p.Mode != "" {
			m, err := ParseMode(p.Mode)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			lp.Mode = &m
		}
		if p.UID != nil {
			uid, err := a.UID(p.UID, where)
			if err != nil {
				return nil, err
			}
			lp.UID = &uid
		}
		if p.GID != nil {
			gid, err := a.GID(p.GID, where)
			if err != nil {
				return nil, err
			}
			lp.GID = &gid
		}
		out = append(out, lp)
	}
	return out, nil
}

// parseDirs makes the `dirs` entries: mode 0755 and owner 0:0 unless given.
func parseDirs(in []DirJSON, a *accounts.Accounts) ([]layer.Entry, error) {
	var out []layer.Entry
	for i, d := range in {
		where := fmt.Sprintf("`dirs` element %d (%s)", i, d.Path)
		e := layer.Entry{Path: d.Path, Dir: true, Mode: 0o755, Origin: where}
		if err := checkRootPath(path.Clean(d.Path)); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if err := fillMeta(&e, d.Mode, d.UID, d.GID, a, where); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// parseFiles makes the `files` entries: exactly one of text, source or
// symlink each.
func parseFiles(in []FileJSON, a *accounts.Accounts) ([]layer.Entry, error) {
	var out []layer.Entry
	for i, f := range in {
		where := fmt.Sprintf("`files` element %d (%s)", i, f.Path)
		if err := checkRootPath(path.Clean(f.Path)); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		e := layer.Entry{Path: f.Path, Origin: where}
		n := 0
		if f.Text != nil {
			n++
			e.File, e.Data = true, []byte(*f.Text)
		}
		if f.Source != "" {
			n++
			if storePathOf(path.Clean(f.Source)) == "" {
				return nil, fmt.Errorf("%s: source %q must be a file in the Nix store", where, f.Source)
			}
			e.File, e.Host = true, path.Clean(f.Source) // checked when planned (fileEntries)
		}
		if f.Symlink != "" {
			n++
			e.Linkname = f.Symlink
		}
		if n != 1 {
			return nil, fmt.Errorf("%s: give exactly one of text, source or symlink", where)
		}
		if e.Linkname != "" && f.Mode != "" {
			return nil, fmt.Errorf("%s: a symlink has no mode", where)
		}
		if err := fillMeta(&e, f.Mode, f.UID, f.GID, a, where); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// parseRoot checks the arguments of the root layer: accounts first, as the
// others may name users and groups.
func parseRoot(p *parsed, o *Options) error {
	switch o.CopyToRootMode {
	case "", CopyToRootCopy:
		p.copyToRootMode = CopyToRootCopy
	case CopyToRootSymlink:
		p.copyToRootMode = CopyToRootSymlink
	default:
		return fmt.Errorf("`copyToRootMode` %q: valid values are %q (the packages' files, copied) and %q (buildEnv-style links into the store)", o.CopyToRootMode, CopyToRootCopy, CopyToRootSymlink)
	}
	var err error
	if p.accounts, err = accounts.Parse(o.Users, o.Groups); err != nil {
		return err
	}
	if err := p.accounts.CheckConfigUser(p.config.User); err != nil {
		return err
	}
	if p.perms, err = parsePerms(o.Perms, p.accounts); err != nil {
		return err
	}
	if p.dirs, err = parseDirs(o.Dirs, p.accounts); err != nil {
		return err
	}
	if p.files, err = parseFiles(o.Files, p.accounts); err != nil {
		return err
	}
	return nil
}

func fillMeta(e *layer.Entry, mode string, uid, gid *accounts.ID, a *accounts.Accounts, where string) error {
	if mode != "" {
		m, err := ParseMode(mode)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if m == 0 {
			return fmt.Errorf("%s: mode 0000 leaves it unusable; give a mode such as \"0755\"", where)
		}
		e.Mode = m
	}
	var err error
	if e.UID, err = a.UID(uid, where); err != nil {
		return err
	}
	if e.GID, err = a.GID(gid, where); err != nil {
		return err
	}
	return nil
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

// Config is the image config: image-spec's fields, plus the fields only
// Docker's image format has. They are written in the same JSON object, where
// Docker reads them, and podman too once the image is in Docker's format
// (the archive that docker load and podman load read); image-spec readers
// ignore fields they do not know.
type Config struct {
	v1.ImageConfig
	DockerConfig
}

// DockerConfig are Docker's config fields that image-spec lacks.
type DockerConfig struct {
	Healthcheck *HealthConfig `json:"Healthcheck,omitempty"`
	OnBuild     []string      `json:"OnBuild,omitempty"`
	Shell       []string      `json:"Shell,omitempty"`
	Hostname    string        `json:"Hostname,omitempty"`
	Domainname  string        `json:"Domainname,omitempty"`
	StopTimeout *int          `json:"StopTimeout,omitempty"`
}

// HealthConfig is Docker's health check; durations are nanoseconds.
type HealthConfig struct {
	Test          []string `json:"Test,omitempty"`
	Interval      int64    `json:"Interval,omitempty"`
	Timeout       int64    `json:"Timeout,omitempty"`
	StartPeriod   int64    `json:"StartPeriod,omitempty"`
	StartInterval int64    `json:"StartInterval,omitempty"`
	Retries       int      `json:"Retries,omitempty"`
}

// imageJSON is the image config blob: image-spec's, with Config widened.
type imageJSON struct {
	v1.Image
	Config Config `json:"config,omitempty"`
}

// ParseConfig decodes the `config` argument, checked by the table's
// imageConfig rows, into the image config: an Env attribute set becomes
// "NAME=value" strings sorted by name, ExposedPorts and Volumes lists become
// sets.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if len(raw) == 0 || string(raw) == "null" {
		return c, nil
	}
	v, err := imageTable().CheckArgument("config", raw)
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
	if err := imageTable().Decode(data, &o); err != nil {
		return nil, err
	}
	if o.Tag == nil {
		return nil, errors.New("`tag` is null: the builder needs a tag (nix/image.nix derives one from the inputs)")
	}
	p := &parsed{name: o.Name, tag: *o.Tag, layers: o.Layers, maxLayers: o.MaxLayers, annotations: o.Annotations, layering: o.Layering, stream: o.Stream,
		fromImage: o.FromImage, baseName: o.FromImageRef, basePick: basePick{name: deref(o.FromImageName), tag: deref(o.FromImageTag)}}
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
	if err := parseRoot(p, &o); err != nil {
		return nil, err
	}
	p.nixDB, p.nixUID, p.nixGID = o.InitializeNixDatabase, o.NixUID, o.NixGID
	if err := checkNixOwner(p); err != nil {
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
