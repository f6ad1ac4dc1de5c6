package options

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

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
		if !contains(known().Namespaces, string(ns.Type)) {
			return nil, fmt.Errorf("`namespaces`: unknown namespace %q; valid types are %s", ns.Type, quoted(known().Namespaces))
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
