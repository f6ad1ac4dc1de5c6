package spec

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// Whatever the options, ParseOptions and Generate do not panic, errors are one
// line, and options that parse (without extraConfig, which may break the
// document on purpose) generate a configuration the schema accepts.
func FuzzParseOptions(f *testing.F) {
	for _, seed := range []string{
		`{"args":["/bin/sh"]}`,
		`{"args":["x"],"user":"1000:100","env":{"A":"b"},"workingDir":"/srv"}`,
		`{"args":["x"],"mounts":{"/data":{"type":"tmpfs","source":"tmpfs","options":["size=16m","mode=1777"]}}}`,
		`{"args":["x"],"capabilities":{"bounding":["kill"]},"rlimits":{"NOFILE":{"soft":1,"hard":2}}}`,
		`{"args":["x"],"namespaces":["pid",{"type":"network","path":"/x"}],"hostname":"h","shmSize":"1g"}`,
		`{"args":["x"],"storeMode":"bind","os":"darwin","arch":"aarch64","annotations":{"a":"b"}}`,
		`{"args":["x"],"extraConfig":{"process":{"oomScoreAdj":1},"linux":{"maskedPaths":null}}}`,
		`{"args":["x"],"readOnly":true}`,
		`[]`, `null`, `{"args":[""]}`,
	} {
		f.Add([]byte(seed))
	}
	env := Env{System: "x86_64-linux", StorePaths: []string{"/nix/store/0c5kfzq6xnlvmhba8yvfz3f6zv1j6rj8-hello"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseOptions(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		s, err := Generate(o, env)
		if err != nil {
			if len(o.ExtraConfig) == 0 {
				t.Fatalf("options parsed but Generate failed: %v", err)
			}
			return
		}
		if errs := Validate(s, ""); len(errs) > 0 && len(o.ExtraConfig) == 0 {
			t.Fatalf("generated config is not valid: %v", errs)
		}
	})
}

// ParseUser accepts exactly "uid" and "uid:gid" with ids below 2^32-1, and
// what it accepts prints back to itself.
func FuzzParseUser(f *testing.F) {
	for _, seed := range []string{"0", "1000", "1000:100", "4294967294:0", "4294967295", "", ":", "a:b", "1:2:3", "+1", "01:02"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUser(s)
		if err != nil {
			return
		}
		if u.UID > maxID || u.GID > maxID {
			t.Fatalf("ParseUser(%q) = %+v: id out of range", s, u)
		}
		back := strconv.FormatUint(uint64(u.UID), 10) + ":" + strconv.FormatUint(uint64(u.GID), 10)
		if u2, err := ParseUser(back); err != nil || !reflect.DeepEqual(u2, u) {
			t.Fatalf("ParseUser(%q) = %+v, but %q gives %+v, %v", s, u, back, u2, err)
		}
		uidPart, _, _ := strings.Cut(s, ":")
		if n, _ := strconv.ParseUint(uidPart, 10, 64); n != uint64(u.UID) {
			t.Fatalf("ParseUser(%q) uid %d", s, u.UID)
		}
	})
}

// Sizes (shmSize, size= options) round-trip through formatSize, and mount
// option checks never panic; an accepted option has no comma or NUL.
func FuzzMountOption(f *testing.F) {
	for _, seed := range []string{"size=64m", "size=65536k", "mode=1777", "uid=0", "gid=5", "ro", "size=", "mode=8", "size=18446744073709551615", "x=y,z"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, opt string) {
		err := checkMountOption(opt)
		if err == nil && (opt == "" || strings.ContainsAny(opt, ",\x00")) {
			t.Fatalf("checkMountOption accepted %q", opt)
		}
		_, val, _ := strings.Cut(opt, "=")
		n, err := parseSize(val)
		if err != nil {
			return
		}
		if back, err := parseSize(formatSize(n)); err != nil || back != n {
			t.Fatalf("size %q = %d, formatted %q reads back %d, %v", val, n, formatSize(n), back, err)
		}
	})
}

// DeepMerge follows JSON Merge Patch: a null deletes, other values of the
// patch are in the result, keys only in base survive, the base is not
// modified, and applying the same patch twice changes nothing more.
func FuzzDeepMerge(f *testing.F) {
	for _, seed := range [][2]string{
		{`{"a":1}`, `{"b":2}`},
		{`{"a":{"x":1,"y":[1,2]}}`, `{"a":{"y":null,"z":{"q":null}}}`},
		{`{"process":{"env":["A=1"]}}`, `{"process":{"env":["B=2"],"oomScoreAdj":3}}`},
		{`[1,2]`, `{"a":null}`},
		{`{"a":1}`, `"s"`},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, baseJSON, patchJSON string) {
		var base, patch any
		if json.Unmarshal([]byte(baseJSON), &base) != nil || json.Unmarshal([]byte(patchJSON), &patch) != nil {
			return
		}
		before, _ := json.Marshal(base)
		got := DeepMerge(base, patch)
		if after, _ := json.Marshal(base); string(after) != string(before) {
			t.Fatalf("base modified: %s -> %s", before, after)
		}
		if again := DeepMerge(got, patch); !reflect.DeepEqual(again, got) {
			t.Fatalf("not idempotent: %v then %v", got, again)
		}
		p, ok := patch.(map[string]any)
		if !ok {
			if !reflect.DeepEqual(got, patch) {
				t.Fatalf("a non-object patch must replace: got %v", got)
			}
			return
		}
		m, ok := got.(map[string]any)
		if !ok {
			t.Fatalf("object patch gave %T", got)
		}
		for k, v := range p {
			if v == nil {
				if _, present := m[k]; present {
					t.Fatalf("key %q set to null is still present", k)
				}
			} else if _, present := m[k]; !present {
				t.Fatalf("key %q of the patch is missing", k)
			}
		}
		if b, ok := base.(map[string]any); ok {
			for k, v := range b {
				if _, inPatch := p[k]; !inPatch && !reflect.DeepEqual(m[k], v) {
					t.Fatalf("key %q only in base changed", k)
				}
			}
		}
	})
}
