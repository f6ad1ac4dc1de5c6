package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"runtime"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Annotation keys recording the platform. runtime-spec 1.0 dropped `platform`;
// these are the names the OCI image spec uses for the same two values (image
// config `os` and `architecture`), so a tool that turns the bundle back into
// an image finds them under names it knows.
const (
	AnnotationOS   = "org.opencontainers.image.os"
	AnnotationArch = "org.opencontainers.image.architecture"
)

// DefaultPath is process.env's PATH unless env sets one: the one runc spec and
// Docker use, so programs linked into / by `contents` are found as they are on
// any distribution.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultShmSize is the size of /dev/shm when shmSize is not given (64 MiB, as
// runc spec and Docker).
const DefaultShmSize = 64 << 20

// BindStoreOptions are the options of the read-only bind mount of each store
// path in bind store mode.
var BindStoreOptions = []string{"rbind", "ro"}

// DefaultCapabilities are runc spec's (bounding, effective, permitted; no
// ambient set, so a non-root process gets none).
func DefaultCapabilities() []string {
	return []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
}

// DefaultMaskedPaths are runc spec's: kernel interfaces that leak host data or
// allow attacks on the host.
func DefaultMaskedPaths() []string {
	return []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}
}

// DefaultReadonlyPaths are runc spec's.
func DefaultReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

func defaultNamespaces() []specs.LinuxNamespace {
	return []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.MountNamespace},
		{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
	}
}

// defaultMounts are the seed's table made valid (options always an array,
// devpts with runc's mode=0620) plus a writable /tmp.
func defaultMounts(shmSize uint64) []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + formatSize(shmSize)}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
	}
}

// Generate builds the runtime configuration. It does no I/O, and the same
// options and env give the same JSON byte for byte.
func Generate(o *Options, env Env) (*specs.Spec, error) {
	if o == nil {
		return nil, errors.New("no options")
	}
	n, err := o.normalize()
	if err != nil {
		return nil, err
	}
	arch := n.arch
	if arch == "" {
		if arch, err = archOfSystem(env.System); err != nil {
			return nil, err
		}
	}
	linux := n.os == "linux"

	proc := &specs.Process{
		Terminal: o.Terminal,
		User:     specs.User{UID: 0, GID: 0},
		Args:     append([]string(nil), n.args...),
		Cwd:      "/",
	}
	if n.user != nil {
		proc.User = *n.user
	}
	if n.cwd != "" {
		proc.Cwd = path.Clean(n.cwd)
	}
	if !n.envSet["PATH"] {
		proc.Env = append(proc.Env, "PATH="+DefaultPath)
	}
	proc.Env = append(proc.Env, n.env...)
	proc.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024}}
	if n.rlimitsGiven {
		proc.Rlimits = n.rlimits
	}

	s := &specs.Spec{
		Version:  specs.Version,
		Process:  proc,
		Root:     &specs.Root{Path: "rootfs", Readonly: o.Readonly},
		Hostname: o.Hostname,
		Annotations: map[string]string{
			AnnotationOS:   n.os,
			AnnotationArch: arch,
		},
	}
	for k, v := range o.Annotations {
		s.Annotations[k] = v
	}

	var mounts []specs.Mount
	if linux {
		c := DefaultCapabilities()
		proc.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c}
		if n.caps != nil {
			proc.Capabilities = n.caps
			// execve clears the effective and permitted sets of a non-root
			// process unless the capabilities are ambient: a listed capability
			// is one the process holds, whatever its uid.
			if n.capsList && proc.User.UID != 0 {
				proc.Capabilities.Inheritable = n.caps.Bounding
				proc.Capabilities.Ambient = n.caps.Bounding
			}
		}
		proc.NoNewPrivileges = o.NoNewPrivileges == nil || *o.NoNewPrivileges
		nss := defaultNamespaces()
		if n.nsGiven {
			nss = n.namespaces
		}
		s.Linux = &specs.Linux{
			Namespaces:    nss,
			MaskedPaths:   DefaultMaskedPaths(),
			ReadonlyPaths: DefaultReadonlyPaths(),
		}
		if o.MaskedPaths != nil {
			s.Linux.MaskedPaths = append([]string{}, o.MaskedPaths...)
		}
		if o.ReadonlyPaths != nil {
			s.Linux.ReadonlyPaths = append([]string{}, o.ReadonlyPaths...)
		}
		shm := uint64(DefaultShmSize)
		if n.shmSize != 0 {
			shm = n.shmSize
		}
		mounts = defaultMounts(shm)
	}
	if n.storeMode == "bind" {
		for _, p := range env.StorePaths {
			if !isAbs(p) {
				return nil, fmt.Errorf("store path %q is not absolute", p)
			}
			mounts = append(mounts, specs.Mount{Destination: p, Type: "bind", Source: p, Options: append([]string{}, BindStoreOptions...)})
		}
	}
	mounts = mergeMounts(mounts, n.mounts)
	SortMounts(mounts)
	s.Mounts = mounts

	if n.extra != nil {
		if s, err = applyExtraConfig(s, n.extra); err != nil {
			return nil, err
		}
	}
	if errs := checkConfig(s); len(errs) > 0 {
		return nil, fmt.Errorf("the generated configuration is not valid: %w", errors.Join(errs...))
	}
	return s, nil
}

// archOfSystem maps a Nix system ("x86_64-linux") to GOARCH. With no system
// (the CLI outside Nix) it is the builder's own architecture.
func archOfSystem(system string) (string, error) {
	if system == "" {
		return runtime.GOARCH, nil
	}
	cpu, _, _ := strings.Cut(system, "-")
	a, err := normalizeArch(cpu)
	if err != nil {
		return "", fmt.Errorf("cannot derive the architecture from the build's system %q; set `arch`", system)
	}
	return a, nil
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

// SortMounts orders mounts so that a parent comes before its children and the
// order is stable: destinations compare component by component. A tmpfs that
// RootfsSymlinks redirects into /dev, and anything mounted below it, sorts by
// its real place, after /dev.
func SortMounts(ms []specs.Mount) {
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
	merged := DeepMerge(doc, extra)
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

// DeepMerge returns patch merged over base: objects merge key by key, a null
// in patch deletes the key, and anything else (lists, scalars) replaces. Neither
// argument is modified.
func DeepMerge(base, patch any) any {
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
		out[k] = DeepMerge(out[k], v)
	}
	return out
}
