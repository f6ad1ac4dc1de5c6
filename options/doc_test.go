package options

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/arguments.md from the argument table")

// docs/arguments.md is the argument table in words, generated from known.json:
// what each argument accepts and its default are exactly what both sides check
// and the builder applies. `go test ./options -update` rewrites it.
func TestArgumentsDocMatchesTable(t *testing.T) {
	got := renderArguments()
	const file = "../docs/arguments.md"
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	for _, sec := range docSections {
		shown[sec.table] = true
	}
	for fn := range rawTables() {
		if !shown[fn] {
			t.Errorf("table %s is not in docs/arguments.md: add it to docSections", fn)
		}
	}
	if string(want) != got {
		t.Errorf("%s is not what the argument table says; run go test ./options -update", file)
	}
}

// docSections are the tables in the order the document shows them.
var docSections = []struct{ table, title, intro string }{
	{"buildContainer", "buildContainer", "An OCI runtime bundle ([buildContainer.md](buildContainer.md), [configuration.md](configuration.md), [store.md](store.md))."},
	{"buildImage", "buildImage", "An OCI image layout ([buildImage.md](buildImage.md))."},
	{"imageConfig", "buildImage's `config`", "The attributes of buildImage's `config`: the image-spec's field names."},
	{"perm", "an element of `perms` (buildImage, buildLayer)", "The paths whose mode or owner the layers set: one path, or every path matching regex or glob."},
	{"user", "an element of `users`", "One account of the image's /etc/passwd."},
	{"group", "an element of `groups`", "One group of the image's /etc/group."},
	{"dir", "an element of `dirs`", "An empty directory of the root layer (a string is its path)."},
	{"file", "an element of `files`", "A file of the root layer: exactly one of text, source and symlink."},
	{"healthcheck", "`config.Healthcheck`", "Docker's health check."},
	{"buildLayer", "buildLayer", "One layer shared by the images that list it ([buildImage.md](buildImage.md))."},
	{"planLayers", "plan-layers (internal)", "The arguments nix/image.nix gives the layer plan of layering = \"auto-derivations\"; no caller gives them."},
	{"buildIndex", "buildIndex", "A multi-arch image index ([registry.md](registry.md))."},
	{"pullImage", "pullImage", "A base image from a registry, one fixed-output derivation ([registry.md](registry.md))."},
	{"pullImageFromLock", "pullImageFromLock", "A base image from a lock file written by `ocitools lock`, each blob its own fixed-output derivation ([registry.md](registry.md))."},
	{"archive", "archive (toArchive, toOCIArchive)", "One file for `docker load` and `podman load` ([buildImage.md](buildImage.md)): toArchive image and toOCIArchive image are archive { inherit image; } and archive { inherit image; ociOnly = true; }."},
}

func renderArguments() string {
	var b strings.Builder
	b.WriteString(`# Arguments: what each function accepts

Generated from the argument tables, ` + "`options/known.json`" + `, by ` + "`go test ./options -update`" + `;
do not edit. The Nix wrappers check these rules at evaluation (nix/table.nix)
and the builders check them again, with the same messages, before their deeper
checks (described with each function in its document). A string may also be a
path or a derivation where it says "string or derivation".
`)
	for _, sec := range docSections {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n| argument | meaning | accepts | default |\n| --- | --- | --- | --- |\n", sec.title, sec.intro)
		rows := TableOf(sec.table).Rows
		for _, name := range sortedKeys(rows) {
			b.WriteString(renderRow(name, rows[name]))
		}
	}
	return b.String()
}

func renderRow(name string, a Argument) string {
	var accepts []string
	for _, typ := range sortedKeys(a.Types) {
		accepts = append(accepts, describeRule(typ, a.Types[typ]))
	}
	def := a.DefaultText
	if a.Required {
		def = "required"
	} else if def == "" {
		var buf bytes.Buffer
		_ = json.Compact(&buf, a.Default)
		def = "`" + buf.String() + "`"
	}
	nix := ""
	if a.NixOnly {
		nix = " (Nix only: not passed to the builder)"
	}
	if a.Internal {
		nix = " (set by the wrapper, not given)"
	}
	if a.Refuse != "" {
		accepts, def = []string{"nothing: not supported: " + a.Refuse}, "not supported"
	}
	return fmt.Sprintf("| `%s` | %s%s | %s | %s |\n", name, a.Doc, nix, strings.Join(accepts, "; or "), def)
}

var docPlural = map[string]string{
	"string": "strings", "stringlike": "strings or derivations", "int": "integers", "bool": "booleans",
	"list": "lists", "set": "attribute sets", "float": "floats", "null": "nulls", "path": "paths",
}

var docTypeWords = map[string]string{
	"string": "a string", "stringlike": "a string or derivation", "int": "an integer", "bool": "a boolean",
	"list": "a list", "set": "an attribute set", "float": "a float", "null": "null", "path": "a path",
}

func describeRule(typ string, r TypeRule) string {
	var parts []string
	words := func(ts []string) string {
		var w []string
		for _, t := range ts {
			w = append(w, docPlural[t])
		}
		return strings.Join(w, " or ")
	}
	s := docTypeWords[typ]
	if r.Elements != nil {
		switch typ {
		case "list":
			s += " of " + words(r.Elements)
		case "set":
			s += " of " + words(r.Elements)
		}
	}
	if r.NonEmpty {
		parts = append(parts, "not empty")
	}
	if r.Values != nil {
		var lists []string
		for _, l := range r.Values {
			lists = append(lists, strings.TrimSpace(knownReasons("labels")[l]+" "+quoted(knownNames(l))))
		}
		parts = append(parts, "one of "+strings.Join(lists, ", or "))
	}
	if r.Unsupported != "" {
		for _, v := range sortedKeys(knownReasons(r.Unsupported)) {
			parts = append(parts, fmt.Sprintf("not %q", v))
		}
	}
	if r.Pattern != "" {
		parts = append(parts, fmt.Sprintf("each string is %s, matching `%s`", r.What, strings.ReplaceAll(r.Pattern, "|", `\|`)))
	}
	if r.Names != "" {
		parts = append(parts, fmt.Sprintf("each string names a %s%s", r.NameWhat, prefixNote(r.Prefix)))
	}
	if r.Keys != nil {
		parts = append(parts, "attributes "+strings.Join(r.Keys, ", "))
	}
	if r.RequiredKeys != nil {
		parts = append(parts, strings.Join(r.RequiredKeys, " and ")+" required")
	}
	if r.KeyPattern != "" {
		parts = append(parts, fmt.Sprintf("each attribute name is %s", r.KeyWhat))
	}
	if r.KeyNames != "" {
		parts = append(parts, fmt.Sprintf("each attribute name names a %s%s", r.NameWhat, prefixNote(r.Prefix)))
	}
	if r.Min != nil {
		parts = append(parts, fmt.Sprintf("at least %d", *r.Min))
	}
	if r.Max != nil {
		parts = append(parts, fmt.Sprintf("at most %d", *r.Max))
	}
	if r.MaxLength != nil {
		parts = append(parts, fmt.Sprintf("at most %d bytes", *r.MaxLength))
	}
	if r.Unique {
		parts = append(parts, "each element once")
	}
	if r.Marker != "" {
		parts = append(parts, "each element "+r.MarkerWhat)
	}
	if r.Table != "" {
		parts = append(parts, fmt.Sprintf("the attributes of %s, below", r.Table))
	}
	if r.ElementTable != "" {
		parts = append(parts, fmt.Sprintf("each attribute set has the attributes of %s, below", r.ElementTable))
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, "; ") + ")"
	}
	return s
}

func prefixNote(prefix string) string {
	if prefix == "" {
		return ""
	}
	return fmt.Sprintf(", the %s prefix and case optional", prefix)
}
