package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/layout"
	"github.com/ocitools/ocitools/options"
)

// Annotation keys recording the platform. runtime-spec 1.0 dropped `platform`;
// these are the names the OCI image spec uses for the same two values (image
// config `os` and `architecture`), so a tool that turns the bundle back into
// an image finds them under names it knows.
const (
	AnnotationOS   = "org.opencontainers.image.os"
	AnnotationArch = "org.opencontainers.image.architecture"
)

// bindStoreOptions are the options of the read-only bind mount of each store
// path in bind store mode.
var bindStoreOptions = []string{"rbind", "ro"}

// defaultMounts are the seed's table made valid (options always an array,
// devpts with runc's mode=0620) plus a writable /tmp.
func defaultMounts(shmSize uint64) []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + options.FormatSize(shmSize)}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
	}
}

// Generate builds the runtime configuration from a parsed request and the
// closure (absolute store paths; bind-mounted read-only in bind store mode). It
// does no I/O, and the same request and closure give the same JSON byte for byte.
func Generate(r *options.Request, storePaths []string) (*specs.Spec, error) {
	if r == nil {
		return nil, errors.New("no request")
	}
	proc := &specs.Process{
		Terminal: r.Terminal,
		User:     r.User,
		Args:     append([]string(nil), r.Args...),
		Env:      append([]string(nil), r.Env...),
		Cwd:      r.Cwd,
		Rlimits:  append([]specs.POSIXRlimit(nil), r.Rlimits...),
	}
	s := &specs.Spec{
		Version:  specs.Version,
		Process:  proc,
		Root:     &specs.Root{Path: layout.RootfsDir, Readonly: r.Readonly},
		Hostname: r.Hostname,
		Annotations: map[string]string{
			AnnotationOS:   r.OS,
			AnnotationArch: r.Arch,
		},
	}
	for k, v := range r.Annotations {
		s.Annotations[k] = v
	}

	var mounts []specs.Mount
	if r.Linux() {
		caps := *r.Capabilities
		proc.Capabilities = &caps
		proc.NoNewPrivileges = r.NoNewPrivileges
		s.Linux = &specs.Linux{
			Namespaces:    append([]specs.LinuxNamespace(nil), r.Namespaces...),
			MaskedPaths:   append([]string{}, r.MaskedPaths...),
			ReadonlyPaths: append([]string{}, r.ReadonlyPaths...),
		}
		mounts = defaultMounts(r.ShmSize)
	}
	if r.StoreMode == "bind" {
		for _, p := range storePaths {
			if !strings.HasPrefix(p, "/") {
				return nil, fmt.Errorf("store path %q is not absolute", p)
			}
			mounts = append(mounts, specs.Mount{Destination: p, Type: "bind", Source: p, Options: append([]string{}, bindStoreOptions...)})
		}
	}
	mounts = mergeMounts(mounts, r.Mounts)
	sortMounts(mounts)
	s.Mounts = mounts

	if r.ExtraConfig != nil {
		var err error
		if s, err = applyExtraConfig(s, r.ExtraConfig); err != nil {
			return nil, err
		}
	}
	if errs := checkConfig(s); len(errs) > 0 {
		return nil, fmt.Errorf("the generated configuration is not valid: %w", errors.Join(errs...))
	}
	return s, nil
}

// mergeMounts puts user mounts over defaults: the same destination replaces.
func mergeMounts(base, user []specs.Mount) []specs.Mount {
	idx := map[string]int{}
	out := make([]specs.Mount, 0, len(base)+len(user))
	for _, m := range base {
		idx[m.Destination] = len(out)
		out = append(out, m)
	}
	for _, m := range user {
		if i, ok := idx[m.Destination]; ok {
			out[i] = m
			continue
		}
		idx[m.Destination] = len(out)
		out = append(out, m)
	}
	return out
}

// sortMounts orders mounts so that a parent comes before its children and the
// order is stable: destinations compare component by component. A tmpfs that
// RootfsSymlinks redirects into /dev, and anything mounted below it, sorts by
// its real place, after /dev.
func sortMounts(ms []specs.Mount) {
	redirect := tmpfsRedirects(ms)
	key := func(m specs.Mount) []string {
		d := path.Clean(m.Destination)
		for from, to := range redirect {
			if d == from || strings.HasPrefix(d, from+"/") {
				d = to + strings.TrimPrefix(d, from)
				break
			}
		}
		return strings.Split(strings.Trim(d, "/"), "/")
	}
	sort.SliceStable(ms, func(i, j int) bool {
		a, b := key(ms[i]), key(ms[j])
		if ms[i].Destination == "/" || ms[j].Destination == "/" {
			return ms[i].Destination == "/" && ms[j].Destination != "/"
		}
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return len(a) < len(b)
	})
}

// applyExtraConfig merges extra into the JSON of s (JSON Merge Patch, RFC 7396:
// objects merge, null deletes, anything else replaces) and decodes it back
// strictly, so a misspelt field is an error rather than silently dropped.
func applyExtraConfig(s *specs.Spec, extra map[string]any) (*specs.Spec, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encoding the configuration: %w", err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decoding the configuration: %w", err)
	}
	merged := deepMerge(doc, extra)
	data, err = json.Marshal(merged)
	if err != nil {
		return nil, fmt.Errorf("`extraConfig`: %w", err)
	}
	if err := schemaCheck(data); len(err) > 0 {
		return nil, fmt.Errorf("`extraConfig` makes config.json invalid: %w", errors.Join(err...))
	}
	var out specs.Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("`extraConfig` makes config.json invalid: %v", err)
	}
	return &out, nil
}

// deepMerge returns patch merged over base: objects merge key by key, a null
// in patch deletes the key, and anything else (lists, scalars) replaces. Neither
// argument is modified.
func deepMerge(base, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	b, ok := base.(map[string]any)
	out := make(map[string]any, len(b)+len(p))
	if ok {
		for k, v := range b {
			out[k] = v
		}
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = deepMerge(out[k], v)
	}
	return out
}
