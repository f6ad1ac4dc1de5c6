package options

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Argument is one row of the argument table (the "arguments" object of
// known.json): what nix/oci-tools.nix checks at evaluation and what this
// package checks first, with the same rules, before its deep checks.
type Argument struct {
	Required    bool                `json:"required"`
	NixOnly     bool                `json:"nixOnly"`
	Default     json.RawMessage     `json:"default"`
	DefaultText string              `json:"defaultText"`
	Doc         string              `json:"doc"`
	Types       map[string]TypeRule `json:"types"`
	// Examples are accepted by both sides, Refused refused by both,
	// BuilderRefused accepted at evaluation and refused by the builder.
	Examples       []json.RawMessage `json:"examples"`
	Refused        []json.RawMessage `json:"refused"`
	BuilderRefused []json.RawMessage `json:"builderRefused"`
}

// TypeRule holds the checks for a value of one Nix type (see known.json's comment).
type TypeRule struct {
	Elements     []string `json:"elements"`
	NonEmpty     bool     `json:"nonEmpty"`
	Values       []string `json:"values"`
	Unsupported  string   `json:"unsupported"`
	Pattern      string   `json:"pattern"`
	What         string   `json:"what"`
	Names        string   `json:"names"`
	Prefix       string   `json:"prefix"`
	NameWhat     string   `json:"nameWhat"`
	Keys         []string `json:"keys"`
	RequiredKeys []string `json:"requiredKeys"`
	KeyPattern   string   `json:"keyPattern"`
	KeyWhat      string   `json:"keyWhat"`
	KeyNames     string   `json:"keyNames"`
	Min          *int64   `json:"min"`
}

// Arguments returns the argument table, by name.
func Arguments() map[string]Argument { return argTable }

var argTable = func() map[string]Argument {
	var doc struct {
		Arguments map[string]Argument `json:"arguments"`
	}
	dec := json.NewDecoder(bytes.NewReader(knownJSON))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		panic(fmt.Sprintf("options: embedded known.json: %v", err))
	}
	return doc.Arguments
}()

// knownDoc is known.json by top-level key, for the lists the table's rules name.
var knownDoc = func() map[string]json.RawMessage {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(knownJSON, &doc); err != nil {
		panic(fmt.Sprintf("options: embedded known.json: %v", err))
	}
	return doc
}()

// knownNames returns the members of a list of known.json, or the keys of a map.
// A rule naming neither is a programming error the package's tests catch.
func knownNames(name string) []string {
	var list []string
	if json.Unmarshal(knownDoc[name], &list) == nil {
		return list
	}
	var m map[string]string
	if json.Unmarshal(knownDoc[name], &m) == nil {
		return sortedKeys(m)
	}
	panic(fmt.Sprintf("options: known.json has no list or map %q", name))
}

func knownReasons(name string) map[string]string {
	var m map[string]string
	if err := json.Unmarshal(knownDoc[name], &m); err != nil {
		panic(fmt.Sprintf("options: known.json has no map %q", name))
	}
	return m
}

// builderArgumentNames lists, sorted, the arguments that reach the builder.
func builderArgumentNames() []string {
	var names []string
	for n, a := range argTable {
		if !a.NixOnly {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// nixType names the Nix type a JSON value has (builtins.typeOf's names), as Nix
// reads it with builtins.fromJSON and hands it on through structured attrs.
func nixType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case string:
		return "string"
	case json.Number:
		if isIntLiteral(string(x)) {
			return "int"
		}
		return "float"
	case []any:
		return "list"
	case map[string]any:
		return "set"
	}
	return fmt.Sprintf("%T", v)
}

var intLiteral = regexp.MustCompile(`^-?[0-9]+$`)

func isIntLiteral(s string) bool { return intLiteral.MatchString(s) }

// typeMatches: stringlike is a string, a path or a derivation, which all reach
// the builder as strings.
func typeMatches(want, got string) bool {
	return want == got || (want == "stringlike" && got == "string")
}

func describeValue(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case []any:
		return "a list"
	case map[string]any:
		return "an attribute set"
	case json.Number:
		if isIntLiteral(string(x)) {
			return "an integer"
		}
		return "a float"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

var typeWords = map[string]string{
	"string": "a string", "stringlike": "a string", "int": "an integer", "bool": "a boolean",
	"list": "a list", "set": "an attribute set", "float": "a float", "null": "null", "path": "a path",
}

func typeList(types []string) string {
	words := make([]string, len(types))
	for i, t := range types {
		words[i] = typeWords[t]
	}
	return strings.Join(words, " or ")
}

func sortedTypes(m map[string]TypeRule) []string { return sortedKeys(m) }

func fullMatch(pattern, s string) bool {
	return regexp.MustCompile("^(?:" + pattern + ")$").MatchString(s)
}

// canonicalIn upper-cases s and adds prefix when there is one, and reports
// whether the result is in list.
func canonicalIn(s, prefix string, list []string) bool {
	if prefix != "" {
		s = strings.ToUpper(s)
		if !strings.HasPrefix(s, prefix) {
			s = prefix + s
		}
	}
	return contains(list, s)
}

// checkTable applies the table's rules to every argument of fields, in name
// order, as nix/oci-tools.nix does at evaluation; the first problem is returned
// as the same sentence the wrapper throws.
func checkTable(fields map[string]any) error {
	for _, name := range builderArgumentNames() {
		a := argTable[name]
		v, ok := fields[name]
		if !ok {
			if a.Required {
				return fmt.Errorf("`%s` is required: %s", name, a.Doc)
			}
			continue
		}
		if msg := checkRow(name, a, v); msg != "" {
			return errors.New(msg)
		}
	}
	return nil
}

// attrPath writes name.key as the wrapper does: `mounts."/data"`, `env.A`.
var nixIdentifier = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_'-]*$`)

func attrPath(name, key string) string {
	if nixIdentifier.MatchString(key) {
		return name + "." + key
	}
	return fmt.Sprintf("%s.%q", name, key)
}

// checkRow returns what is wrong with the value v of argument name, or "".
func checkRow(name string, a Argument, v any) string {
	arg := "`" + name + "`"
	t := nixType(v)
	var rule *TypeRule
	var allowed []string
	for _, want := range sortedTypes(a.Types) {
		allowed = append(allowed, want)
		if typeMatches(want, t) {
			r := a.Types[want]
			rule = &r
		}
	}
	if rule == nil {
		return fmt.Sprintf("%s must be %s, not %s", arg, typeList(allowed), describeValue(v))
	}
	switch x := v.(type) {
	case string:
		return checkString(*rule, x, arg)
	case json.Number:
		if rule.Min != nil {
			var n int64
			if _, err := fmt.Sscan(string(x), &n); err == nil && n < *rule.Min {
				return fmt.Sprintf("%s must be at least %d, not %s", arg, *rule.Min, x)
			}
		}
	case []any:
		if rule.NonEmpty && len(x) == 0 {
			return fmt.Sprintf("%s must not be empty", arg)
		}
		for i, e := range x {
			if msg := checkElement(*rule, e, fmt.Sprintf("%s: element %d", arg, i)); msg != "" {
				return msg
			}
		}
	case map[string]any:
		for _, k := range rule.RequiredKeys {
			if _, ok := x[k]; !ok {
				return fmt.Sprintf("%s needs the attribute %s", arg, k)
			}
		}
		for _, k := range sortedKeys(x) {
			if rule.Keys != nil && !contains(rule.Keys, k) {
				return fmt.Sprintf("%s: unknown attribute %q; valid attributes are %s", arg, k, quoted(rule.Keys))
			}
			if rule.KeyPattern != "" && !fullMatch(rule.KeyPattern, k) {
				return fmt.Sprintf("%s: %q must be %s", arg, k, rule.KeyWhat)
			}
			if rule.KeyNames != "" && !canonicalIn(k, rule.Prefix, knownNames(rule.KeyNames)) {
				return fmt.Sprintf("%s: unknown %s %q; valid names are %s", arg, rule.NameWhat, k, strings.Join(knownNames(rule.KeyNames), ", "))
			}
			if msg := checkElement(*rule, x[k], "`"+attrPath(name, k)+"`"); msg != "" {
				return msg
			}
		}
	}
	return ""
}

// checkElement checks a list element or attribute value: its type, and the
// string rules (pattern, names) for strings and for the strings of a list value.
func checkElement(r TypeRule, e any, where string) string {
	if r.Elements != nil {
		t := nixType(e)
		ok := false
		for _, want := range r.Elements {
			ok = ok || typeMatches(want, t)
		}
		if !ok {
			return fmt.Sprintf("%s must be %s, not %s", where, typeList(r.Elements), describeValue(e))
		}
	}
	switch x := e.(type) {
	case string:
		return checkString(r, x, where)
	case []any:
		for i, s := range x {
			if str, ok := s.(string); ok {
				if msg := checkString(r, str, fmt.Sprintf("%s, element %d", where, i)); msg != "" {
					return msg
				}
			}
		}
	}
	return ""
}

func checkString(r TypeRule, s, where string) string {
	if r.Unsupported != "" {
		if why, ok := knownReasons(r.Unsupported)[s]; ok {
			return fmt.Sprintf("%s: %q is not supported: %s", where, s, why)
		}
	}
	if r.Values != nil {
		var valid, parts []string
		for _, l := range r.Values {
			valid = append(valid, knownNames(l)...)
			part := quoted(knownNames(l))
			if label := knownReasons("labels")[l]; label != "" {
				part = label + " " + part
			}
			parts = append(parts, part)
		}
		if !contains(valid, s) {
			return fmt.Sprintf("%s: unknown value %q; valid values are %s", where, s, strings.Join(parts, ", or "))
		}
	}
	if r.Pattern != "" && !fullMatch(r.Pattern, s) {
		return fmt.Sprintf("%s must be %s, not %q", where, r.What, s)
	}
	if r.Names != "" && !canonicalIn(s, r.Prefix, knownNames(r.Names)) {
		return fmt.Sprintf("%s: unknown %s %q; valid names are %s", where, r.NameWhat, s, strings.Join(knownNames(r.Names), ", "))
	}
	return ""
}
