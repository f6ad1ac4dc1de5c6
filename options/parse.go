package options

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/internal/accounts"
)

// maxID is the largest uid/gid a process may have: (uid_t)-1 means "no id" to
// the kernel, so it is refused.
const maxID = math.MaxUint32 - 1

// Parse reads buildContainer's arguments (the "container" attribute of the
// structured attrs, or a JSON file given to the CLI) once: strictly (an unknown
// argument is an error naming it and the valid ones), against the argument
// table's rules (as nix/oci-tools.nix applies them at evaluation, with the same
// messages), then every value deeply. system is the build's Nix system
// ("x86_64-linux"), whose CPU is the default arch; "" means this program's.
func Parse(data []byte, system string) (*Request, error) {
	// The table's rules first, the ones the Nix wrapper applies at evaluation,
	// so that both refuse a value with the same sentence.
	fields, err := containerTable().Check(data)
	if err != nil {
		return nil, err
	}
	if raw, ok := fields["mounts"]; ok {
		if err := checkMountsShape(raw); err != nil {
			return nil, err
		}
	}
	var a arguments
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, describeDecodeError(err)
	}
	return a.request(system)
}

// containerTable is buildContainer's argument table.
func containerTable() *Table { return TableOf("buildContainer") }

// decodeObject decodes a JSON object keeping numbers exact (json.Number).
func decodeObject(data []byte) (map[string]any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("options must be a JSON object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("options must be one JSON object, with nothing after it")
	}
	if v == nil {
		return nil, errors.New("options must be a JSON object, not null")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("options must be a JSON object, not %s", describeValue(v))
	}
	return obj, nil
}

func describeDecodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		name, _, _ := strings.Cut(te.Field, ".")
		typ := te.Type
		if f, ok := fieldByJSONName(name); ok {
			typ = f.Type
		}
		return fmt.Errorf("`%s` must be %s (found a JSON %s)", name, goTypeName(typ), te.Value)
	}
	return fmt.Errorf("decoding options: %w", err)
}

func fieldByJSONName(name string) (reflect.StructField, bool) {
	t := reflect.TypeOf(arguments{})
	for i := 0; i < t.NumField(); i++ {
		if n, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); n == name {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

func goTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(goTypeName(t.Elem()), "a ") + "s"
	case reflect.Map:
		return "an attribute set of " + strings.TrimPrefix(goTypeName(t.Elem()), "a ") + "s"
	case reflect.Struct:
		return "an attribute set"
	case reflect.Ptr:
		return goTypeName(t.Elem())
	}
	return t.String()
}

// tableDefault decodes buildContainer's default for name into v.
func tableDefault(name string, v any) { containerTable().Default(name, v) }

// defaultRaw is the table's default for name, as an argument would give it.
func defaultRaw(name string) json.RawMessage { return argTable()[name].Default }

// request checks every argument and converts it, applying the table's
// defaults: one step per argument (or per few that depend on each other), in
// the order their problems are reported.
func (o *arguments) request(system string) (*Request, error) {
	r := &Request{Readonly: o.Readonly, Hostname: o.Hostname, Terminal: o.Terminal,
		Annotations: o.Annotations, Contents: o.Contents}
	platform := func(r *Request) (err error) {
		r.OS, r.Arch, err = Platform(o.OS, o.Arch, system)
		return err
	}
	for _, step := range []func(*Request) error{
		o.args, platform, o.mounts, o.env, o.workingDir, o.user, o.hostname, o.capabilities,
		o.rlimits, o.namespaces, o.paths, o.shmSize, o.flags, o.extraConfig, o.contents,
		o.linuxOnly, o.accounts,
	} {
		if err := step(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// orDefault is raw, or the table's default for name when it is not given.
func orDefault(raw json.RawMessage, name string) json.RawMessage {
	if len(raw) == 0 {
		return defaultRaw(name)
	}
	return raw
}

func (o *arguments) args(r *Request) error {
	if len(o.Args) == 0 {
		return errors.New("`args` must not be empty: it is the command the container runs (args[0] is the program)")
	}
	if o.Args[0] == "" {
		return errors.New("`args`: args[0] is empty; it must name the program to run")
	}
	for i, a := range o.Args {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("`args`: element %d contains a NUL byte", i)
		}
	}
	r.Args = o.Args
	return nil
}

func (o *arguments) mounts(r *Request) error {
	spelled := map[string]string{} // cleaned destination -> the spelling given
	for _, dest := range sortedKeys(o.Mounts) {
		m, err := checkMount(dest, o.Mounts[dest])
		if err != nil {
			return err
		}
		if prev, dup := spelled[m.Destination]; dup {
			return fmt.Errorf("`mounts`: %q and %q are the same destination %s; give it once", prev, dest, m.Destination)
		}
		spelled[m.Destination] = dest
		r.Mounts = append(r.Mounts, m)
	}
	sort.Slice(r.Mounts, func(i, j int) bool { return r.Mounts[i].Destination < r.Mounts[j].Destination })
	return nil
}

// env: the default PATH first unless env sets PATH.
func (o *arguments) env(r *Request) error {
	env, set, err := parseEnv(o.Env)
	if err != nil {
		return err
	}
	if !set["PATH"] {
		var def map[string]string
		tableDefault("env", &def)
		r.Env = append(r.Env, "PATH="+def["PATH"])
	}
	r.Env = append(r.Env, env...)
	return nil
}

func (o *arguments) workingDir(r *Request) error {
	r.Cwd = o.WorkingDir
	if r.Cwd == "" {
		tableDefault("workingDir", &r.Cwd)
	}
	if !isAbs(r.Cwd) {
		return fmt.Errorf("`workingDir` must be an absolute path (start with /), not %q", r.Cwd)
	}
	r.Cwd = path.Clean(r.Cwd)
	return nil
}

func (o *arguments) user(r *Request) error {
	u, err := parseUserJSON(orDefault(o.User, "user"))
	if err != nil {
		return err
	}
	r.User = *u
	return nil
}

func (o *arguments) hostname(r *Request) error {
	if strings.ContainsRune(o.Hostname, 0) || strings.ContainsRune(o.Hostname, '/') {
		return fmt.Errorf("`hostname` %q must not contain '/' or NUL", o.Hostname)
	}
	return nil
}

// capabilities, then whether the process can start with them as its user.
func (o *arguments) capabilities(r *Request) error {
	var err error
	if r.Capabilities, err = parseCapabilities(orDefault(o.Capabilities, "capabilities")); err != nil {
		return err
	}
	if err := checkStartable(r); err != nil {
		return err
	}
	// execve clears the effective and permitted sets of a non-root process
	// unless the capabilities are ambient: a listed capability is one the
	// process holds, whatever its uid. (The default set stays as runc spec has it.)
	var list []string
	if len(o.Capabilities) > 0 && json.Unmarshal(o.Capabilities, &list) == nil && r.User.UID != 0 {
		r.Capabilities.Inheritable = r.Capabilities.Bounding
		r.Capabilities.Ambient = r.Capabilities.Bounding
	}
	return nil
}

func (o *arguments) rlimits(r *Request) (err error) {
	r.Rlimits, err = parseRlimits(orDefault(o.Rlimits, "rlimits"))
	return err
}

func (o *arguments) namespaces(r *Request) (err error) {
	r.Namespaces, err = parseNamespaces(orDefault(o.Namespaces, "namespaces"))
	return err
}

// paths: maskedPaths and readonlyPaths, each replacing its default.
func (o *arguments) paths(r *Request) error {
	r.MaskedPaths, r.ReadonlyPaths = o.MaskedPaths, o.ReadonlyPaths
	if r.MaskedPaths == nil {
		tableDefault("maskedPaths", &r.MaskedPaths)
	}
	if r.ReadonlyPaths == nil {
		tableDefault("readonlyPaths", &r.ReadonlyPaths)
	}
	for _, l := range []struct {
		name  string
		paths []string
	}{{"maskedPaths", r.MaskedPaths}, {"readonlyPaths", r.ReadonlyPaths}} {
		for _, p := range l.paths {
			if !isAbs(p) {
				return fmt.Errorf("`%s`: %q is not an absolute path", l.name, p)
			}
		}
	}
	return nil
}

func (o *arguments) shmSize(r *Request) (err error) {
	r.ShmSize, err = parseSizeJSON(orDefault(o.ShmSize, "shmSize"))
	return err
}

// flags: the booleans and storeMode, whose values the table has checked.
func (o *arguments) flags(r *Request) error {
	for _, f := range []struct {
		name  string
		given *bool
		dst   *bool
	}{
		{"noNewPrivileges", o.NoNewPrivileges, &r.NoNewPrivileges},
		{"verify", o.Verify, &r.Verify},
		{"initializeNixDatabase", o.InitializeNixDatabase, &r.NixDatabase},
	} {
		tableDefault(f.name, f.dst)
		if f.given != nil {
			*f.dst = *f.given
		}
	}
	r.StoreMode = o.StoreMode
	if r.StoreMode == "" {
		tableDefault("storeMode", &r.StoreMode)
	}
	return nil
}

func (o *arguments) extraConfig(r *Request) error {
	if len(o.ExtraConfig) == 0 || string(o.ExtraConfig) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(o.ExtraConfig))
	dec.UseNumber() // every digit of an integer is kept
	if err := dec.Decode(&r.ExtraConfig); err != nil || r.ExtraConfig == nil {
		return errors.New("`extraConfig` must be an attribute set (a JSON object), deep-merged into config.json")
	}
	return nil
}

func (o *arguments) contents(r *Request) error {
	for _, c := range o.Contents {
		if !isAbs(c) {
			return fmt.Errorf("`contents`: %q is not an absolute store path", c)
		}
	}
	return nil
}

// linuxOnly refuses the Linux-only arguments for another os and drops their
// defaults (rlimits are POSIX and stay); hostname needs the uts namespace.
func (o *arguments) linuxOnly(r *Request) error {
	if !r.Linux() {
		for _, f := range []struct {
			name  string
			given bool
		}{
			{"capabilities", len(o.Capabilities) > 0}, {"namespaces", len(o.Namespaces) > 0},
			{"maskedPaths", o.MaskedPaths != nil}, {"readonlyPaths", o.ReadonlyPaths != nil},
			{"shmSize", len(o.ShmSize) > 0}, {"noNewPrivileges", o.NoNewPrivileges != nil},
		} {
			if f.given {
				return fmt.Errorf("`%s` applies only when os = \"linux\", not %q", f.name, r.OS)
			}
		}
		r.Capabilities, r.Namespaces, r.MaskedPaths, r.ReadonlyPaths = nil, nil, nil, nil
	}
	if o.Hostname != "" && r.Linux() && !hasNamespace(r.Namespaces, specs.UTSNamespace) {
		return errors.New("`hostname` needs the uts namespace: add \"uts\" to `namespaces`")
	}
	return nil
}

func (o *arguments) accounts(r *Request) error { return r.addAccounts(o.Users, o.Groups) }

// addAccounts checks users and groups and gives each user's home a tmpfs
// owned by the user: the rootfs is in the store, owned by root and read-only,
// so ownership comes from the configuration (a mount option), as for /tmp.
// A mount the user gave at the same place wins.
func (r *Request) addAccounts(users []accounts.User, groups []accounts.Group) error {
	a, err := accounts.Parse(users, groups)
	if err != nil {
		return err
	}
	r.Accounts = a
	if !a.Given {
		return nil
	}
	_, homes := a.Files()
	for _, h := range homes {
		if h.UID == 0 || slices.ContainsFunc(r.Mounts, func(m specs.Mount) bool { return m.Destination == h.Path }) {
			continue
		}
		r.Mounts = append(r.Mounts, specs.Mount{Destination: h.Path, Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", fmt.Sprintf("mode=%04o", h.Mode), fmt.Sprintf("uid=%d", h.UID), fmt.Sprintf("gid=%d", h.GID)}})
	}
	sort.Slice(r.Mounts, func(i, j int) bool { return r.Mounts[i].Destination < r.Mounts[j].Destination })
	return nil
}

// Platform normalises os and arch as buildContainer does, for every builder
// that takes them (bundles, images): os defaults to the table's default and
// must be a supported GOOS value; arch is a GOARCH value or a Nix spelling
// (x86_64, aarch64, ...) and defaults to the CPU of system (a Nix system such
// as "x86_64-linux"; "" means this program's architecture). It returns GOOS and
// GOARCH values, or an error naming the argument and the valid values.
func Platform(osName, arch, system string) (goos, goarch string, err error) {
	if osName == "" {
		tableDefault("os", &osName)
	}
	if err := checkOS(osName); err != nil {
		return "", "", err
	}
	if arch == "" {
		goarch, err = archOfSystem(system)
	} else {
		goarch, err = normalizeArch(arch)
	}
	if err != nil {
		return "", "", err
	}
	return osName, goarch, nil
}

// archOfSystem maps a Nix system ("x86_64-linux") to GOARCH. With no system
// (the CLI outside Nix) it is this program's own architecture.
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

func isAbs(p string) bool { return strings.HasPrefix(p, "/") && !strings.ContainsRune(p, 0) }
