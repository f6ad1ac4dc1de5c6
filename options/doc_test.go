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
	if string(want) != got {
		t.Errorf("%s is not what the argument table says; run go test ./options -update", file)
	}
}

func renderArguments() string {
	var b strings.Builder
	b.WriteString(`# buildContainer arguments: what each accepts

Generated from the argument table, ` + "`options/known.json`" + `, by ` + "`go test ./options -update`" + `;
do not edit. The Nix wrapper checks these rules at evaluation and the builder
checks them again, with the same messages, before its deeper checks (described
with each argument in [buildContainer.md](buildContainer.md),
[configuration.md](configuration.md) and [store.md](store.md)). A string may also be
a path or a derivation where it says "string or derivation".

| argument | meaning | accepts | default |
| --- | --- | --- | --- |
`)
	for _, name := range sortedKeys(argTable) {
		a := argTable[name]
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
		fmt.Fprintf(&b, "| `%s` | %s%s | %s | %s |\n", name, a.Doc, nix, strings.Join(accepts, "; or "), def)
	}
	return b.String()
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
		parts = append(parts, fmt.Sprintf("each string is %s, matching `%s`", r.What, r.Pattern))
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
