package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"reflect"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxID is the largest uid/gid a process may have: (uid_t)-1 means "no id" to
// the kernel, so it is refused.
const maxID = math.MaxUint32 - 1

// ParseOptions decodes options strictly: an unknown field is an error naming it
// and listing the valid ones. Every field is then checked as Generate would use
// it, so a bad value fails here with a message naming the argument.
func ParseOptions(data []byte) (*Options, error) {
	fields, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	valid := builderArgumentNames()
	for _, name := range sortedKeys(fields) {
		if !contains(valid, name) {
			return nil, fmt.Errorf("unknown argument %q%s; valid arguments are %s", name, suggest(name, valid), strings.Join(valid, ", "))
		}
	}
	// The table's rules first, the ones the Nix wrapper applies at evaluation,
	// so that both refuse a value with the same sentence.
	if err := checkTable(fields); err != nil {
		return nil, err
	}
	if raw, ok := fields["mounts"]; ok {
		if err := checkMountsShape(raw); err != nil {
			return nil, err
		}
	}
	var o Options
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return nil, describeDecodeError(err)
	}
	if _, err := o.normalize(); err != nil {
		return nil, err
	}
	return &o, nil
}

// decodeObject decodes a JSON object keeping numbers exact (json.Number).
func decodeObject(data []byte) (map[string]any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("options must be a JSON object: %w", err)
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

// suggest finds valid names equal to n ignoring case, for typos like readOnly.
func suggest(n string, valid []string) string {
	for _, v := range valid {
		if strings.EqualFold(v, n) {
			return fmt.Sprintf(" (did you mean %q?)", v)
		}
	}
	return ""
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
	t := reflect.TypeOf(Options{})
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

// checkMountsShape gives mounts errors that name the destination: missing type
// or source, unknown keys, options that are not strings.
func checkMountsShape(v any) error {
	ms, ok := v.(map[string]any)
	if !ok {
		return errors.New("`mounts` must be an attribute set mapping each absolute destination to { type, source, options ? [] }")
	}
	for _, dest := range sortedKeys(ms) {
		m, ok := ms[dest].(map[string]any)
		if !ok {
			return fmt.Errorf("`mounts.%q` must be an attribute set { type, source, options ? [] }", dest)
		}
		for _, k := range sortedKeys(m) {
			if k != "type" && k != "source" && k != "options" {
				return fmt.Errorf("`mounts.%q`: unknown attribute %q; valid attributes are type, source, options", dest, k)
			}
		}
		for _, k := range []string{"type", "source"} {
			v, ok := m[k]
			if !ok {
				return fmt.Errorf("`mounts.%q.%s` is missing (type: for example \"tmpfs\" or \"bind\"; source: a host path for bind mounts, else the file system's name)", dest, k)
			}
			if _, ok := v.(string); !ok {
				return fmt.Errorf("`mounts.%q.%s` must be a string", dest, k)
			}
		}
		if v, ok := m["options"]; ok {
			opts, ok := v.([]any)
			for _, o := range opts {
				ok = ok && nixType(o) == "string"
			}
			if !ok {
				return fmt.Errorf("`mounts.%q.options` must be a list of strings", dest)
			}
		}
	}
	return nil
}

// normalized is Options after every check, in the types of the runtime spec.
// nil fields mean "use the default".
type normalized struct {
	os, arch     string
	args         []string
	mounts       []specs.Mount
	env          []string
	envSet       map[string]bool
	cwd          string
	user         *specs.User
	caps         *specs.LinuxCapabilities
	capsList     bool // caps came as a plain list
	rlimits      []specs.POSIXRlimit
	rlimitsGiven bool
	namespaces   []specs.LinuxNamespace
	nsGiven      bool
	shmSize      uint64
	storeMode    string
	extra        map[string]any
}

// normalize checks every field and converts it. The arch is left empty when not
// given (Generate derives it from the build's system).
func (o *Options) normalize() (*normalized, error) {
	n := &normalized{os: o.OS, cwd: o.WorkingDir, storeMode: o.StoreMode}
	if len(o.Args) == 0 {
		return nil, errors.New("`args` must not be empty: it is the command the container runs (args[0] is the program)")
	}
	if o.Args[0] == "" {
		return nil, errors.New("`args`: args[0] is empty; it must name the program to run")
	}
	for i, a := range o.Args {
		if strings.ContainsRune(a, 0) {
			return nil, fmt.Errorf("`args`: element %d contains a NUL byte", i)
		}
	}
	n.args = o.Args
	if n.os == "" {
		n.os = "linux"
	}
	if err := checkOS(n.os); err != nil {
		return nil, err
	}
	linux := n.os == "linux"
	if o.Arch != "" {
		a, err := normalizeArch(o.Arch)
		if err != nil {
			return nil, err
		}
		n.arch = a
	}
	spelled := map[string]string{} // cleaned destination -> the spelling given
	for _, dest := range sortedKeys(o.Mounts) {
		m, err := checkMount(dest, o.Mounts[dest])
		if err != nil {
			return nil, err
		}
		if prev, dup := spelled[m.Destination]; dup {
			return nil, fmt.Errorf("`mounts`: %q and %q are the same destination %s; give it once", prev, dest, m.Destination)
		}
		spelled[m.Destination] = dest
		n.mounts = append(n.mounts, m)
	}
	var err error
	if n.env, n.envSet, err = parseEnv(o.Env); err != nil {
		return nil, err
	}
	if n.cwd != "" && !isAbs(n.cwd) {
		return nil, fmt.Errorf("`workingDir` must be an absolute path (start with /), not %q", n.cwd)
	}
	if len(o.User) > 0 {
		if n.user, err = parseUserJSON(o.User); err != nil {
			return nil, err
		}
	}
	if strings.ContainsRune(o.Hostname, 0) || strings.ContainsRune(o.Hostname, '/') {
		return nil, fmt.Errorf("`hostname` %q must not contain '/' or NUL", o.Hostname)
	}
	if len(o.Capabilities) > 0 {
		if n.caps, err = parseCapabilities(o.Capabilities); err != nil {
			return nil, err
		}
		var l []string
		n.capsList = json.Unmarshal(o.Capabilities, &l) == nil
	}
	if len(o.Rlimits) > 0 {
		if n.rlimits, err = parseRlimits(o.Rlimits); err != nil {
			return nil, err
		}
		n.rlimitsGiven = true
	}
	if len(o.Namespaces) > 0 {
		if n.namespaces, err = parseNamespaces(o.Namespaces); err != nil {
			return nil, err
		}
		n.nsGiven = true
	}
	for _, l := range []struct {
		name  string
		paths []string
	}{{"maskedPaths", o.MaskedPaths}, {"readonlyPaths", o.ReadonlyPaths}} {
		for _, p := range l.paths {
			if !isAbs(p) {
				return nil, fmt.Errorf("`%s`: %q is not an absolute path", l.name, p)
			}
		}
	}
	if len(o.ShmSize) > 0 {
		if n.shmSize, err = parseSizeJSON(o.ShmSize); err != nil {
			return nil, err
		}
	}
	for k := range o.Annotations {
		if k == "" {
			return nil, errors.New("`annotations`: a key is empty")
		}
	}
	if n.storeMode != "" && !contains(known.StoreModes, n.storeMode) {
		return nil, fmt.Errorf("`storeMode`: unknown value %q; valid values are %s", n.storeMode, quoted(known.StoreModes))
	}
	if len(o.ExtraConfig) > 0 && string(o.ExtraConfig) != "null" {
		dec := json.NewDecoder(bytes.NewReader(o.ExtraConfig))
		dec.UseNumber() // every digit of an integer is kept
		if err := dec.Decode(&n.extra); err != nil || n.extra == nil {
			return nil, errors.New("`extraConfig` must be an attribute set (a JSON object), deep-merged into config.json")
		}
	}
	for _, c := range o.Contents {
		if !isAbs(c) {
			return nil, fmt.Errorf("`contents`: %q is not an absolute store path", c)
		}
	}
	if !linux {
		for _, f := range []struct {
			name  string
			given bool
		}{
			{"capabilities", n.caps != nil}, {"namespaces", n.nsGiven},
			{"maskedPaths", o.MaskedPaths != nil}, {"readonlyPaths", o.ReadonlyPaths != nil},
			{"shmSize", len(o.ShmSize) > 0}, {"noNewPrivileges", o.NoNewPrivileges != nil},
		} {
			if f.given {
				return nil, fmt.Errorf("`%s` applies only when os = \"linux\", not %q", f.name, n.os)
			}
		}
	}
	if o.Hostname != "" && linux {
		nss := n.namespaces
		if !n.nsGiven {
			nss = defaultNamespaces()
		}
		if !hasNamespace(nss, specs.UTSNamespace) {
			return nil, errors.New("`hostname` needs the uts namespace: add \"uts\" to `namespaces`")
		}
	}
	return n, nil
}

func isAbs(p string) bool { return strings.HasPrefix(p, "/") && !strings.ContainsRune(p, 0) }

func checkMount(dest string, m Mount) (specs.Mount, error) {
	where := fmt.Sprintf("`mounts.%q`", dest)
	if !isAbs(dest) {
		return specs.Mount{}, fmt.Errorf("%s: the destination must be an absolute path (start with /)", where)
	}
	if m.Type == "" {
		return specs.Mount{}, fmt.Errorf("%s.type must be a non-empty string (for example \"tmpfs\" or \"bind\")", where)
	}
	if m.Type == "bind" && !isAbs(m.Source) {
		return specs.Mount{}, fmt.Errorf("%s.source must be an absolute host path for a bind mount, not %q", where, m.Source)
	}
	for _, opt := range m.Options {
		if err := checkMountOption(opt); err != nil {
			return specs.Mount{}, fmt.Errorf("%s.options: %w", where, err)
		}
	}
	opts := m.Options
	if opts == nil {
		// The schema wants an array, never null.
		opts = []string{}
	}
	return specs.Mount{Destination: path.Clean(dest), Type: m.Type, Source: m.Source, Options: opts}, nil
}

// checkMountOption refuses options no runtime can pass on: empty ones, commas
// (runtimes join options with commas, so one would split), NUL, and malformed
// values of the options whose syntax is known (size, mode, uid, gid).
func checkMountOption(opt string) error {
	if opt == "" {
		return errors.New("an option is empty")
	}
	if strings.ContainsAny(opt, ",\x00") {
		return fmt.Errorf("option %q contains a comma or NUL; give each option as its own list element", opt)
	}
	key, val, hasVal := strings.Cut(opt, "=")
	if !hasVal {
		return nil
	}
	switch key {
	case "size", "nr_blocks", "nr_inodes":
		if _, err := parseSize(val); err != nil && !strings.HasSuffix(val, "%") {
			return fmt.Errorf("option %q: %v", opt, err)
		}
	case "mode", "ptmxmode":
		if v, err := strconv.ParseUint(val, 8, 32); err != nil || v > 0o7777 {
			return fmt.Errorf("option %q: the mode must be octal digits up to 7777", opt)
		}
	case "uid", "gid":
		if v, err := strconv.ParseUint(val, 10, 32); err != nil || v > maxID {
			return fmt.Errorf("option %q: the id must be a number below 4294967295", opt)
		}
	}
	return nil
}

// parseSize reads "65536", "64k", "64m", "1g" (either case) as bytes.
func parseSize(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("the size is empty; give bytes or a number with k, m or g (for example \"64m\")")
	}
	mult := uint64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	}
	digits := s
	if mult != 1 {
		digits = s[:len(s)-1]
	}
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, fmt.Errorf("size %q is not a number of bytes or a number with k, m or g (for example \"64m\")", s)
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || v > math.MaxUint64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return v * mult, nil
}

func parseSizeJSON(raw json.RawMessage) (uint64, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return 0, fmt.Errorf("`shmSize`: %w", err)
	}
	var size uint64
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.ParseUint(string(x), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("`shmSize` must be a whole positive number of bytes, not %s", x)
		}
		size = n
	case string:
		s, err := parseSize(x)
		if err != nil {
			return 0, fmt.Errorf("`shmSize`: %w", err)
		}
		size = s
	default:
		return 0, errors.New("`shmSize` must be a size string such as \"64m\" or a number of bytes")
	}
	if size == 0 {
		return 0, errors.New("`shmSize` must be positive")
	}
	return size, nil
}

// formatSize writes bytes in the largest unit that keeps them exact.
func formatSize(b uint64) string {
	switch {
	case b%(1<<30) == 0:
		return strconv.FormatUint(b>>30, 10) + "g"
	case b%(1<<20) == 0:
		return strconv.FormatUint(b>>20, 10) + "m"
	case b%(1<<10) == 0:
		return strconv.FormatUint(b>>10, 10) + "k"
	}
	return strconv.FormatUint(b, 10)
}

// parseEnv reads {K: V} (keys sorted, for stable output) or ["K=V", ...] (order
// kept). Values may be strings or numbers. It also returns the names set.
func parseEnv(raw json.RawMessage) ([]string, map[string]bool, error) {
	set := map[string]bool{}
	if len(raw) == 0 || string(raw) == "null" {
		return nil, set, nil
	}
	var out []string
	add := func(k, v string) error {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("`env`: invalid variable name %q (it must be non-empty, without '=' or NUL)", k)
		}
		if strings.ContainsRune(v, 0) {
			return fmt.Errorf("`env.%s`: the value contains a NUL byte", k)
		}
		if set[k] {
			return fmt.Errorf("`env`: %s is set twice", k)
		}
		set[k] = true
		out = append(out, k+"="+v)
		return nil
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // env.BIG = 9007199254740993 keeps every digit
	if err := dec.Decode(&obj); err == nil && obj != nil {
		for _, k := range sortedKeys(obj) {
			var v string
			switch x := obj[k].(type) {
			case string:
				v = x
			case json.Number:
				if !isIntLiteral(string(x)) {
					return nil, nil, fmt.Errorf("`env.%s` must be a string or an integer, not the number %s", k, x)
				}
				v = string(x)
			default:
				return nil, nil, fmt.Errorf("`env.%s` must be a string or an integer, not %s", k, describeValue(obj[k]))
			}
			if err := add(k, v); err != nil {
				return nil, nil, err
			}
		}
		return out, set, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, nil, errors.New("`env` must be an attribute set of strings or a list of \"NAME=value\" strings")
	}
	for _, e := range list {
		k, v, ok := strings.Cut(e, "=")
		if !ok {
			return nil, nil, fmt.Errorf("`env`: %q is not of the form NAME=value", e)
		}
		if err := add(k, v); err != nil {
			return nil, nil, err
		}
	}
	return out, set, nil
}

// ParseUser reads "uid" or "uid:gid" with numeric ids; a lone uid runs with
// gid 0, as Docker and runc do for a user with no group.
func ParseUser(s string) (specs.User, error) {
	bad := fmt.Errorf("`user` must be \"uid\" or \"uid:gid\" with numeric ids (for example \"1000:100\"), or { uid, gid, additionalGids ? [] }; got %q", s)
	us, gs, hasGID := strings.Cut(s, ":")
	uid, err := parseID(us)
	if err != nil {
		return specs.User{}, bad
	}
	var gid uint32
	if hasGID {
		if gid, err = parseID(gs); err != nil {
			return specs.User{}, bad
		}
	}
	return specs.User{UID: uid, GID: gid}, nil
}

func parseID(s string) (uint32, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a number")
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v > maxID {
		return 0, errors.New("out of range")
	}
	return uint32(v), nil
}

func parseUserJSON(raw json.RawMessage) (*specs.User, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		u, err := ParseUser(s)
		return &u, err
	}
	var obj struct {
		UID            *json.Number  `json:"uid"`
		GID            *json.Number  `json:"gid"`
		AdditionalGids []json.Number `json:"additionalGids"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("`user` must be \"uid:gid\" or { uid, gid, additionalGids ? [] } with numeric ids: %v", err)
	}
	if obj.UID == nil || obj.GID == nil {
		return nil, errors.New("`user` needs both uid and gid: { uid, gid, additionalGids ? [] }")
	}
	id := func(name string, v json.Number) (uint32, error) {
		n, err := strconv.ParseUint(string(v), 10, 32)
		if err != nil || n > maxID {
			return 0, fmt.Errorf("`user.%s` must be a whole number from 0 to 4294967294, not %s", name, v)
		}
		return uint32(n), nil
	}
	var u specs.User
	var err error
	if u.UID, err = id("uid", *obj.UID); err != nil {
		return nil, err
	}
	if u.GID, err = id("gid", *obj.GID); err != nil {
		return nil, err
	}
	for _, g := range obj.AdditionalGids {
		v, err := id("additionalGids", g)
		if err != nil {
			return nil, err
		}
		u.AdditionalGids = append(u.AdditionalGids, v)
	}
	return &u, nil
}

var capSetNames = []string{"ambient", "bounding", "effective", "inheritable", "permitted"}

// parseCapabilities reads a list (bounding, effective and permitted get it) or
// an object of sets; names are canonicalised, deduplicated and sorted.
func parseCapabilities(raw json.RawMessage) (*specs.LinuxCapabilities, error) {
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		caps, err := canonicalCaps(list)
		if err != nil {
			return nil, fmt.Errorf("`capabilities`: %w", err)
		}
		return &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}, nil
	}
	var sets map[string]json.RawMessage
	if err := json.Unmarshal(raw, &sets); err != nil || sets == nil {
		return nil, fmt.Errorf("`capabilities` must be a list of capability names or an attribute set of sets (%s)", strings.Join(capSetNames, ", "))
	}
	c := &specs.LinuxCapabilities{}
	for _, name := range sortedKeys(sets) {
		var l []string
		if err := json.Unmarshal(sets[name], &l); err != nil {
			return nil, fmt.Errorf("`capabilities.%s` must be a list of capability names", name)
		}
		caps, err := canonicalCaps(l)
		if err != nil {
			return nil, fmt.Errorf("`capabilities.%s`: %w", name, err)
		}
		switch name {
		case "bounding":
			c.Bounding = caps
		case "effective":
			c.Effective = caps
		case "permitted":
			c.Permitted = caps
		case "inheritable":
			c.Inheritable = caps
		case "ambient":
			c.Ambient = caps
		default:
			return nil, fmt.Errorf("`capabilities`: unknown set %q; valid sets are %s", name, strings.Join(capSetNames, ", "))
		}
	}
	return c, nil
}

func canonicalCaps(list []string) ([]string, error) {
	out := []string{}
	seen := map[string]bool{}
	for _, c := range list {
		cc, err := canonicalCap(c)
		if err != nil {
			return nil, err
		}
		if !seen[cc] {
			seen[cc] = true
			out = append(out, cc)
		}
	}
	sort.Strings(out)
	return out, nil
}

// parseRlimits reads {NAME: n} or {NAME: {soft, hard}}; the result is sorted by type.
func parseRlimits(raw json.RawMessage) ([]specs.POSIXRlimit, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errors.New("`rlimits` must be an attribute set such as { NOFILE = { soft = 1024; hard = 1024; }; }")
	}
	out := []specs.POSIXRlimit{}
	seen := map[string]string{}
	for _, name := range sortedKeys(m) {
		typ, err := canonicalRlimit(name)
		if err != nil {
			return nil, fmt.Errorf("`rlimits`: %w", err)
		}
		if prev, dup := seen[typ]; dup {
			return nil, fmt.Errorf("`rlimits`: %q and %q name the same limit %s", prev, name, typ)
		}
		seen[typ] = name
		var n uint64
		var pair struct {
			Soft *uint64 `json:"soft"`
			Hard *uint64 `json:"hard"`
		}
		if err := json.Unmarshal(m[name], &n); err == nil {
			out = append(out, specs.POSIXRlimit{Type: typ, Soft: n, Hard: n})
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(m[name]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&pair); err != nil || pair.Soft == nil || pair.Hard == nil {
			return nil, fmt.Errorf("`rlimits.%s` must be a non-negative integer or { soft, hard } with non-negative integers", name)
		}
		if *pair.Soft > *pair.Hard {
			return nil, fmt.Errorf("`rlimits.%s`: soft %d is above hard %d", name, *pair.Soft, *pair.Hard)
		}
		out = append(out, specs.POSIXRlimit{Type: typ, Soft: *pair.Soft, Hard: *pair.Hard})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out, nil
}

// parseNamespaces reads ["pid", {type, path}, ...]; order is kept.
func parseNamespaces(raw json.RawMessage) ([]specs.LinuxNamespace, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errors.New("`namespaces` must be a list of namespace types (or { type, path })")
	}
	out := []specs.LinuxNamespace{}
	seen := map[string]bool{}
	for i, it := range items {
		var ns specs.LinuxNamespace
		var s string
		if err := json.Unmarshal(it, &s); err == nil {
			ns.Type = specs.LinuxNamespaceType(s)
		} else {
			var obj struct {
				Type *string `json:"type"`
				Path string  `json:"path"`
			}
			dec := json.NewDecoder(bytes.NewReader(it))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&obj); err != nil || obj.Type == nil {
				return nil, fmt.Errorf("`namespaces`: element %d must be a namespace type or { type, path ? }", i)
			}
			ns.Type, ns.Path = specs.LinuxNamespaceType(*obj.Type), obj.Path
			if ns.Path != "" && !isAbs(ns.Path) {
				return nil, fmt.Errorf("`namespaces`: the path of %s must be absolute, not %q", *obj.Type, ns.Path)
			}
		}
		if !contains(known.Namespaces, string(ns.Type)) {
			return nil, fmt.Errorf("`namespaces`: unknown namespace %q; valid types are %s", ns.Type, quoted(known.Namespaces))
		}
		if seen[string(ns.Type)] {
			return nil, fmt.Errorf("`namespaces`: %q is given twice", ns.Type)
		}
		seen[string(ns.Type)] = true
		out = append(out, ns)
	}
	return out, nil
}

func hasNamespace(nss []specs.LinuxNamespace, t specs.LinuxNamespaceType) bool {
	for _, ns := range nss {
		if ns.Type == t {
			return true
		}
	}
	return false
}
