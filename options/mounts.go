package options

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

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

func checkMount(dest string, m mount) (specs.Mount, error) {
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
