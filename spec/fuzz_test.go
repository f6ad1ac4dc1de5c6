package spec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ocitools/ocitools/options"
)

// Whatever the arguments, options.Parse and Generate do not panic, errors are one
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
	closure := []string{"/nix/store/0c5kfzq6xnlvmhba8yvfz3f6zv1j6rj8-hello"}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := options.Parse(data, "x86_64-linux")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		s, err := Generate(o, closure)
		if err != nil {
			if o.ExtraConfig == nil {
				t.Fatalf("options parsed but Generate failed: %v", err)
			}
			return
		}
		if errs := Validate(s, ""); len(errs) > 0 && o.ExtraConfig == nil {
			t.Fatalf("generated config is not valid: %v", errs)
		}
	})
}

// deepMerge follows JSON Merge Patch: a null deletes, other values of the
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
		got := deepMerge(base, patch)
		if after, _ := json.Marshal(base); string(after) != string(before) {
			t.Fatalf("base modified: %s -> %s", before, after)
		}
		if again := deepMerge(got, patch); !reflect.DeepEqual(again, got) {
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
