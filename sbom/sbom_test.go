package sbom

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/internal/schemadrift"
)

func TestParseName(t *testing.T) {
	tests := []struct{ in, name, version string }{
		{"hello-2.12.1", "hello", "2.12.1"},
		{"bash-interactive-5.2p37", "bash-interactive", "5.2p37"},
		{"xz-5.4.6-bin", "xz", "5.4.6-bin"},
		{"glibc-2.40-66", "glibc", "2.40-66"},
		{"busybox", "busybox", ""},
		{"source", "source", ""},
		{"foo-bar", "foo-bar", ""},
		{"foo-_x", "foo", "_x"}, // not a letter: Nix splits here too
		{"foo-.1", "foo", ".1"}, // as above
		{"foo-", "foo-", ""},    // a trailing '-' starts no version
		{"a-B-1", "a-B", "1"},   // upper-case letters are letters
		{"perl5.38.2-URI-5.21", "perl5.38.2-URI", "5.21"},
		{"python3.12-pip-24.0", "python3.12-pip", "24.0"},
	}
	for _, tt := range tests {
		name, version := ParseName(tt.in)
		if name != tt.name || version != tt.version {
			t.Errorf("ParseName(%q) = %q, %q; want %q, %q", tt.in, name, version, tt.name, tt.version)
		}
	}
}

func testClosure(t *testing.T) *derivation.Closure {
	t.Helper()
	const (
		bb  = "/nix/store/980anh6dywkxmrhyscfwdgh4ik2dppi1-busybox-1.36.1"
		dep = "/nix/store/dfnaghxb0dnaj56w53rhr1587gg8znbs-hello-2.12.1"
		lib = "/nix/store/zrsnx20w1cd4d42n0p7l9ac50pcdllv3-libfoo"
	)
	c, err := derivation.NewClosure([]derivation.PathInfoJSON{
		{Path: bb, NarHash: "sha256:1q8d572y0czwykhyh20djy5lqs7f6ckbcr43ynpbrn3l7blgvb6z", NarSize: 1982760, References: []string{bb}},
		{Path: dep, NarHash: "sha256:1nawxbw0hnk7hxv3585zfvjp7ac8nkdfpjsjb8x1qslxs7g0kza8", NarSize: 176, References: []string{bb, lib}},
		{Path: lib, NarHash: "sha256:1nawxbw0hnk7hxv3585zfvjp7ac8nkdfpjsjb8x1qslxs7g0kza8", NarSize: 176},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testInput(t *testing.T) *Input {
	c := testClosure(t)
	hello := c.Paths[1].Path()
	return &Input{
		Subject: Subject{Kind: "image", Name: "registry.example/hello", Version: "v1"},
		Paths:   c.Paths,
		Attr: Attr{
			Formats: []string{FormatCycloneDX, FormatSPDX},
			Roots:   []string{hello},
			Metadata: map[string]Meta{hello: {
				Pname: "hello", Version: "2.12.1", Description: "A program that greets <you>", Homepage: "https://www.gnu.org/software/hello/",
				Licenses:    []License{{SPDX: "GPL-3.0-or-later"}, {SPDX: "Not-An-SPDX-Id"}, {Name: "Unfree"}},
				Identifiers: map[string]string{"cpe": "cpe:2.3:a:gnu:hello:2.12.1:*:*:*:*:*:*:*", "purl": "pkg:generic/hello@2.12.1"},
			}},
		},
	}
}

// cdxDoc is the part of a CycloneDX document the tests read back.
type cdxDoc struct {
	SerialNumber string `json:"serialNumber"`
	Metadata     struct {
		Timestamp string `json:"timestamp"`
		Component struct {
			Type, Name, Version string
		} `json:"component"`
	} `json:"metadata"`
	Components []struct {
		BOMRef     string                                        `json:"bom-ref"`
		Name       string                                        `json:"name"`
		Version    string                                        `json:"version"`
		Purl       string                                        `json:"purl"`
		CPE        string                                        `json:"cpe"`
		Licenses   []struct{ License struct{ ID, Name string } } `json:"licenses"`
		Properties []struct{ Name, Value string }                `json:"properties"`
	} `json:"components"`
	Dependencies []struct {
		Ref       string   `json:"ref"`
		DependsOn []string `json:"dependsOn"`
	} `json:"dependencies"`
}

func TestCycloneDX(t *testing.T) {
	in := testInput(t)
	data, err := CycloneDX(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(data); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	again, _ := CycloneDX(testInput(t))
	if !bytes.Equal(data, again) {
		t.Fatal("two runs on the same input differ")
	}
	var doc cdxDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Metadata.Timestamp != "" {
		t.Errorf("a timestamp (the clock) is in the document: %s", doc.Metadata.Timestamp)
	}
	if !strings.HasPrefix(doc.SerialNumber, "urn:uuid:") {
		t.Errorf("serial number %q", doc.SerialNumber)
	}
	if c := doc.Metadata.Component; c.Type != "container" || c.Name != "registry.example/hello" || c.Version != "v1" {
		t.Errorf("subject %+v", c)
	}
	if len(doc.Components) != 3 {
		t.Fatalf("%d components, want 3", len(doc.Components))
	}
	byRef := map[string]int{}
	for i, c := range doc.Components {
		byRef[c.BOMRef] = i
		props := map[string]string{}
		for _, p := range c.Properties {
			props[p.Name] = p.Value
		}
		if props[PropStorePath] != c.BOMRef || !strings.HasPrefix(props[PropNarHash], "sha256:") {
			t.Errorf("%s: properties %v", c.BOMRef, props)
		}
		wantMeta := map[bool]string{true: "evaluation", false: "none"}[strings.Contains(c.BOMRef, "hello")]
		if props[PropMetadata] != wantMeta {
			t.Errorf("%s: %s = %q, want %q", c.BOMRef, PropMetadata, props[PropMetadata], wantMeta)
		}
	}
	hello := doc.Components[byRef["/nix/store/dfnaghxb0dnaj56w53rhr1587gg8znbs-hello-2.12.1"]]
	if hello.Name != "hello" || hello.Version != "2.12.1" || hello.CPE == "" ||
		hello.Purl != "pkg:nix/hello@2.12.1?storepath=%2Fnix%2Fstore%2Fdfnaghxb0dnaj56w53rhr1587gg8znbs-hello-2.12.1" {
		t.Errorf("hello: %+v", hello)
	}
	if len(hello.Licenses) != 3 || hello.Licenses[0].License.ID != "GPL-3.0-or-later" ||
		hello.Licenses[1].License.Name != "Not-An-SPDX-Id" || hello.Licenses[2].License.Name != "Unfree" {
		t.Errorf("hello licenses: %+v", hello.Licenses)
	}
	bb := doc.Components[byRef["/nix/store/980anh6dywkxmrhyscfwdgh4ik2dppi1-busybox-1.36.1"]]
	if bb.Name != "busybox" || bb.Version != "1.36.1" || bb.Purl != "pkg:nix/busybox@1.36.1?storepath=%2Fnix%2Fstore%2F980anh6dywkxmrhyscfwdgh4ik2dppi1-busybox-1.36.1" {
		t.Errorf("busybox: %+v", bb)
	}
	// The graph is the references (without self-references), plus the
	// subject's edges to the roots.
	want := map[string][]string{"subject": {hello.BOMRef}}
	for _, p := range in.Paths {
		want[p.Path()] = slices.DeleteFunc(slices.Clone(p.References), func(r string) bool { return r == p.Path() })
	}
	got := map[string][]string{}
	for _, d := range doc.Dependencies {
		got[d.Ref] = d.DependsOn
	}
	for ref, w := range want {
		if g := got[ref]; !slices.Equal(g, w) && len(g)+len(w) > 0 {
			t.Errorf("dependencies of %s: %v, want %v", ref, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d dependency entries, want %d", len(got), len(want))
	}
}

func TestSerialNumberFollowsContent(t *testing.T) {
	a, _ := CycloneDX(testInput(t))
	in := testInput(t)
	in.Subject.Version = "v2"
	b, _ := CycloneDX(in)
	var da, db cdxDoc
	_ = json.Unmarshal(a, &da)
	_ = json.Unmarshal(b, &db)
	if da.SerialNumber == db.SerialNumber {
		t.Error("different content, same serial number")
	}
}

func TestInputChecked(t *testing.T) {
	// Metadata for other outputs of a derivation is left out.
	in := testInput(t)
	in.Attr.Metadata["/nix/store/00000000000000000000000000000000-other"] = Meta{Pname: "other"}
	if data, err := CycloneDX(in); err != nil || strings.Contains(string(data), "-other") {
		t.Errorf("metadata for a path outside the closure: %v", err)
	}
	in = testInput(t)
	in.Attr.Roots = []string{"/nix/store/00000000000000000000000000000000-other"}
	if _, err := CycloneDX(in); err == nil || !strings.Contains(err.Error(), "not in the closure") {
		t.Errorf("root outside the closure: %v", err)
	}
}

func TestRootsWithoutAttr(t *testing.T) {
	in := testInput(t)
	in.Attr.Roots = nil
	if r := in.roots(); !slices.Equal(r, []string{"/nix/store/dfnaghxb0dnaj56w53rhr1587gg8znbs-hello-2.12.1"}) {
		t.Errorf("roots %v", r)
	}
}

func TestDecodeAttr(t *testing.T) {
	tests := []struct {
		raw, err string
	}{
		{``, ""},
		{`null`, ""},
		{`{"formats":["cyclonedx"]}`, ""},
		{`{"formats":["cyclonedx","spdx"],"roots":[],"metadata":{}}`, ""},
		{`{"formats":[]}`, "no formats"},
		{`{"formats":["swid"]}`, `unknown format "swid"`},
		{`{"formats":["spdx"],"extra":1}`, "unknown field"},
		{`{"formats":"spdx"}`, "cannot unmarshal"},
	}
	for _, tt := range tests {
		_, err := DecodeAttr(json.RawMessage(tt.raw))
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("DecodeAttr(%s) = %v, want %q", tt.raw, err, tt.err)
		}
	}
}

func TestSPDX(t *testing.T) {
	data, err := SPDX(testInput(t))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := SPDX(testInput(t))
	if !bytes.Equal(data, again) {
		t.Fatal("two runs on the same input differ")
	}
	var doc struct {
		SPDXVersion  string `json:"spdxVersion"`
		Namespace    string `json:"documentNamespace"`
		CreationInfo struct{ Created string }
		Packages     []struct {
			SPDXID          string `json:"SPDXID"`
			Name            string `json:"name"`
			LicenseDeclared string `json:"licenseDeclared"`
		} `json:"packages"`
		Relationships []struct {
			A    string `json:"spdxElementId"`
			B    string `json:"relatedSpdxElement"`
			Type string `json:"relationshipType"`
		} `json:"relationships"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != DefaultCreated || !strings.HasPrefix(doc.Namespace, "https://spdx.org/spdxdocs/registry.example-hello-") {
		t.Errorf("document: %+v", doc)
	}
	if len(doc.Packages) != 4 {
		t.Errorf("%d packages, want the subject and 3 store paths", len(doc.Packages))
	}
	deps := 0
	for _, r := range doc.Relationships {
		if r.Type == "DEPENDS_ON" && r.A != "SPDXRef-subject" {
			deps++
		}
	}
	if deps != 2 {
		t.Errorf("%d store path dependencies, want 2 (hello -> busybox, hello -> libfoo)", deps)
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, testInput(t)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{CycloneDXFile, SPDXFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestSchemaCatches(t *testing.T) {
	data, _ := CycloneDX(testInput(t))
	for _, bad := range []struct{ from, to string }{
		{`"specVersion": "1.6"`, `"specVersion": 1.6`},
		{`"type": "library"`, `"type": "nonsense"`},
		{`"serialNumber": "urn:uuid:`, `"serialNumber": "x`},
		{`"id": "GPL-3.0-or-later"`, `"id": "Not-An-SPDX-Id"`},
	} {
		doc := strings.Replace(string(data), bad.from, bad.to, 1)
		if doc == string(data) {
			t.Fatalf("%s is not in the document", bad.from)
		}
		if err := Validate([]byte(doc)); err == nil {
			t.Errorf("the schema accepts %s", bad.to)
		}
	}
}

// The embedded copy is the schema of the cyclonedx-go version go.mod
// requires: go generate made it, and it must not drift.
func TestSchemaCopyMatchesModule(t *testing.T) {
	files := slices.Sorted(maps.Keys(schemaIDs))
	schemadrift.Check(t, "github.com/CycloneDX/cyclonedx-go", "schema", "go generate ./sbom", files...)
}

// A base image is one container component the subject depends on, named by
// its reference and digest.
func TestBaseImage(t *testing.T) {
	in := testInput(t)
	digest := "sha256:" + strings.Repeat("ab", 32)
	in.Base = &Base{Name: "registry.example/library/debian:12", Digest: digest}
	data, err := CycloneDX(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(data); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"bom-ref": "base-image"`, `"name": "registry.example/library/debian"`,
		`"purl": "pkg:oci/debian@sha256:` + strings.Repeat("ab", 32) + `?repository_url=registry.example%2Flibrary%2Fdebian"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("no %s in\n%s", want, data)
		}
	}
	var doc cdxDoc
	_ = json.Unmarshal(data, &doc)
	if doc.Dependencies[0].Ref != "subject" || !slices.Contains(doc.Dependencies[0].DependsOn, "base-image") {
		t.Errorf("subject dependencies %+v", doc.Dependencies[0])
	}
	if _, err := SPDX(in); err != nil {
		t.Fatal(err)
	}
	in.Base.Name = ""
	if data, err = CycloneDX(in); err != nil || Validate(data) != nil || !strings.Contains(string(data), `"name": "base image"`) {
		t.Errorf("unnamed base: %v\n%s", err, data)
	}
}
