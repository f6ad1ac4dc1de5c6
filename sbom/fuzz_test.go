package sbom

import (
	"strings"
	"testing"
)

// Validate reads SBOMs from layouts and registries (someone else's): any
// bytes give an answer, never a panic, and our own output is accepted.
func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`))
	f.Add([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"x","licenses":[{"license":{"id":"MIT"}}]}]}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = Validate(data)
	})
}

// ParseName splits at most once and loses nothing.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"hello-2.12.1", "foo-bar", "a-", "-1", "x-1-y-2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, version := ParseName(s)
		if version == "" && name != s {
			t.Fatalf("%q: name %q without a version", s, name)
		}
		if version != "" && name+"-"+version != s {
			t.Fatalf("%q: %q + %q", s, name, version)
		}
		if i := strings.Index(name, "-"); version != "" && i >= 0 && i+1 < len(name) && !isASCIILetter(name[i+1]) {
			t.Fatalf("%q: the name %q has an earlier split point", s, name)
		}
	})
}
