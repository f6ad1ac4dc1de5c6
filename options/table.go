package options

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Argument is one row of an argument table (known.json's comment says what
// each field means): what the Nix wrappers check at evaluation (nix/table.nix)
// and what the builders check first, with the same rules, before their deep
// checks.
type Argument struct {
	Required    bool                `json:"required"`
	NixOnly     bool                `json:"nixOnly"`
	Default     json.RawMessage     `json:"default"`
	DefaultText string              `json:"defaultText"`
	Doc         string              `json:"doc"`
	Types       map[string]TypeRule `json:"types"`
	// Shape names an entry of known.json's shapes: types shared by rows.
	Shape string `json:"shape"`
	// Like names another row ("table.row") this one copies, field by field.
	Like string `json:"like"`
	// Aliases are other spellings a typo suggestion points to this row from.
	Aliases []string `json:"aliases"`
	// Internal arguments are set by the Nix wrapper, not by its caller.
	Internal bool `json:"internal"`
	// Refuse, when set, refuses every value: why the argument is not supported.
	Refuse string `json:"refuse"`
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
	Unique       bool     `json:"unique"`
	Values       []string `json:"values"`
	Unsupported  string   `json:"unsupported"`
	Pattern      string   `json:"pattern"`
	MaxLength    *int     `json:"maxLength"`
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
	Max          *int64   `json:"max"`
	// Table names a table of known.json's tables whose rows check an
	// attribute set value; ElementTable one whose rows check each attribute
	// set element of a list, or each attribute set value of a set.
	Table        string `json:"table"`
	ElementTable string `json:"elementTable"`
	// Marker (Nix only: the builder sees store paths) is an attribute every
	// element must have set to true, MarkerWhat what such an element is.
	Marker     string `json:"marker"`
	MarkerWhat string `json:"markerWhat"`
}

// Table is one function's argument table: buildContainer's (known.json's
// arguments) or one of known.json's tables (buildImage, buildLayer,
// buildIndex, archive, and imageConfig and perm, which check the values of
// one argument).
type Table struct {
	Name string
	Rows map[string]Argument
}

// Arguments returns buildContainer's argument table, by name.
func Arguments() map[string]Argument { return argTable() }

func argTable() map[string]Argument { return TableOf("buildContainer").Rows }

// rawTables are known.json's tables as written (before like and shape).
var rawTables = sync.OnceValue(func() map[string]map[string]json.RawMessage {
	var tables map[string]map[string]json.RawMessage
	var args map[string]json.RawMessage
	knownSection("tables", &tables)
	knownSection("arguments", &args)
	tables["buildContainer"] = args
	return tables
})

var shapes = sync.OnceValue(func() map[string]map[string]TypeRule {
	var s map[string]map[string]TypeRule
	knownSection("shapes", &s)
	return s
})

// knownSection decodes one top-level key of known.json into v, from the one
// parse of the file (knownDoc).
func knownSection(key string, v any) {
	if err := json.Unmarshal(knownDoc()[key], v); err != nil {
		panic(fmt.Sprintf("options: embedded known.json, %s: %v", key, err))
	}
}

var (
	tablesMu sync.Mutex
	tables   = map[string]*Table{}
)

// TableOf returns the argument table of fn ("buildContainer", "buildImage",
// ...). An unknown name is a programming error the package's tests catch.
func TableOf(fn string) *Table {
	tablesMu.Lock()
	defer tablesMu.Unlock()
	if t, ok := tables[fn]; ok {
		return t
	}
	raw, ok := rawTables()[fn]
	if !ok {
		panic(fmt.Sprintf("options: known.json has no table %q", fn))
	}
	t := &Table{Name: fn, Rows: map[string]Argument{}}
	for name := range raw {
		t.Rows[name] = resolveRow(fn, name)
	}
	tables[fn] = t
	return t
}

// resolveRow decodes a row over the row it is like, and adds its shape's types.
func resolveRow(fn, name string) Argument {
	var a Argument
	data := rawTables()[fn][name]
	var like struct {
		Like string `json:"like"`
	}
	if err := json.Unmarshal(data, &like); err != nil {
		panic(fmt.Sprintf("options: known.json %s.%s: %v", fn, name, err))
	}
	if like.Like != "" {
		base, row, _ := strings.Cut(like.Like, ".")
		a = resolveRow(base, row)
		a.Types = maps.Clone(a.Types)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&a); err != nil {
		panic(fmt.Sprintf("options: known.json %s.%s: %v", fn, name, err))
	}
	if a.Shape != "" {
		shape, ok := shapes()[a.Shape]
		if !ok {
			panic(fmt.Sprintf("options: known.json %s.%s: no shape %q", fn, name, a.Shape))
		}
		if a.Types == nil {
			a.Types = map[string]TypeRule{}
		}
		for typ, r := range shape {
			if _, own := a.Types[typ]; !own {
				a.Types[typ] = r
			}
		}
	}
	return a
}

// Default decodes the table's default for name into v. The table's defaults
// are the ones the code applies (and the docs name); a default that does not
// decode is a programming error the package's tests catch.
func (t *Table) Default(name string, v any) {
	dec := json.NewDecoder(bytes.NewReader(t.Rows[name].Default))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		panic(fmt.Sprintf("options: the default of %s.%s in known.json: %v", t.Name, name, err))
	}
}

// Check decodes data, a JSON object of arguments, and applies the table: an
// unknown argument is an error naming it and the valid ones, then every
// row's rules, as the Nix wrapper applies them at evaluation, with the same
// sentences. It returns the arguments, numbers exact (json.Number).
func (t *Table) Check(data []byte) (map[string]any, error) {
	fields, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	valid := t.builderNames()
	for _, name := range sortedKeys(fields) {
		if !contains(valid, name) {
			return nil, fmt.Errorf("unknown argument `%s`%s; valid arguments are %s", name, t.suggest(name, valid), strings.Join(valid, ", "))
		}
	}
	if msg := t.checkFields(fields, ""); msg != "" {
		return nil, errors.New(msg)
	}
	return fields, nil
}

// CheckShape checks v (a string, a number, ...) against one of known.json's
// shapes, for values that come from elsewhere than an argument table (a
// command-line flag); name names the value in the message.
func CheckShape(shape, name string, v any) error {
	s, ok := shapes()[shape]
	if !ok {
		panic(fmt.Sprintf("options: known.json has no shape %q", shape))
	}
	if msg := checkValue("", name, Argument{Types: s}, v); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// knownDoc is known.json by top-level key, for the lists the table's rules name.
var knownDoc = sync.OnceValue(func() map[string]json.RawMessage {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(knownJSON, &doc); err != nil {
		panic(fmt.Sprintf("options: embedded known.json: %v", err))
	}
	return doc
})

// knownNames returns the members of a list of known.json, or the keys of a map.
// A rule naming neither is a programming error the package's tests catch.
func knownNames(name string) []string {
	var list []string
	if json.Unmarshal(knownDoc()[name], &list) == nil {
		return list
	}
	var m map[string]string
	if json.Unmarshal(knownDoc()[name], &m) == nil {
		return sortedKeys(m)
	}
	panic(fmt.Sprintf("options: known.json has no list or map %q", name))
}

// KnownList returns a list of known.json (compressions, os, ...), for the
// code that must agree with it.
func KnownList(name string) []string { return knownNames(name) }

func knownReasons(name string) map[string]string {
	var m map[string]string
	if err := json.Unmarshal(knownDoc()[name], &m); err != nil {
		panic(fmt.Sprintf("options: known.json has no map %q", name))
	}
	return m
}

// builderNames lists, sorted, the arguments that reach the builder.
func (t *Table) builderNames() []string {
	var names []string
	for n, a := range t.Rows {
		if !a.NixOnly {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// suggest finds valid names close to n, for typos like readOnly. It is
// nix/table.nix's rule: the same letters ignoring case, the same first three
// letters (ignoring case) when n has three or more, or a row's alias.
func (t *Table) suggest(n string, valid []string) string {
	var near []string
	ln := strings.ToLower(n)
	for _, v := range valid {
		lv := strings.ToLower(v)
		if lv == ln || (len(ln) >= 3 && len(lv) >= 3 && lv[:3] == ln[:3]) || contains(t.Rows[v].Aliases, ln) {
			near = append(near, v)
		}
	}
	if len(near) == 0 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", quoted(near))
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

// checkFields applies the table's rules to fields as nix/table.nix does at
// evaluation: the first required argument missing, then each argument in name
// order; prefix starts every message (a sub-table's: "`config`: ").
func (t *Table) checkFields(fields map[string]any, prefix string) string {
	for _, name := range t.builderNames() {
		if _, ok := fields[name]; !ok && t.Rows[name].Required {
			return fmt.Sprintf("%s`%s` is required: %s", prefix, name, t.Rows[name].Doc)
		}
	}
	for _, name := range sortedKeys(fields) {
		if msg := checkValue(prefix, name, t.Rows[name], fields[name]); msg != "" {
			return msg
		}
	}
	return ""
}

// checkSub checks an attribute set against a sub-table's rows (config's
// fields, a perms element): unknown attributes, then the rows' rules.
func checkSub(table string, v map[string]any, where string) string {
	t := TableOf(table)
	valid := t.builderNames()
	for _, k := range sortedKeys(v) {
		if !contains(valid, k) {
			return fmt.Sprintf("%s: unknown attribute `%s`%s; valid attributes are %s", where, k, t.suggest(k, valid), strings.Join(valid, ", "))
		}
	}
	return t.checkFields(v, where+": ")
}

// attrPath writes name.key as the wrapper does: `mounts."/data"`, `env.A`.
var nixIdentifier = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_'-]*$`)

func attrPath(name, key string) string {
	if nixIdentifier.MatchString(key) {
		return name + "." + key
	}
	return fmt.Sprintf("%s.%q", name, key)
}

// checkValue returns what is wrong with the value v of the argument name, or
// ""; prefix starts every message.
func checkValue(prefix, name string, a Argument, v any) string {
	arg := prefix + "`" + name + "`"
	if a.Refuse != "" {
		return fmt.Sprintf("%s is not supported: %s", arg, a.Refuse)
	}
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
		return fmt.Sprintf("%s must be %s, not %s", arg, expected(a.Types, allowed), describeValue(v))
	}
	switch x := v.(type) {
	case string:
		return checkString(*rule, x, arg)
	case json.Number:
		return checkInt(*rule, x, arg)
	case []any:
		return checkList(*rule, x, arg)
	case map[string]any:
		return checkSet(*rule, x, prefix, name)
	}
	return ""
}

// expected says what a value of the wrong type should have been: the words
// of the one type's pattern when there is one, else the types.
func expected(types map[string]TypeRule, allowed []string) string {
	if len(allowed) == 1 && types[allowed[0]].What != "" {
		return types[allowed[0]].What
	}
	return typeList(allowed)
}

func checkInt(r TypeRule, x json.Number, arg string) string {
	var n int64
	if _, err := fmt.Sscan(string(x), &n); err != nil {
		return ""
	}
	switch {
	case r.Min != nil && r.Max != nil && (n < *r.Min || n > *r.Max):
		return fmt.Sprintf("%s must be between %d and %d, not %s", arg, *r.Min, *r.Max, x)
	case r.Min != nil && n < *r.Min:
		return fmt.Sprintf("%s must be at least %d, not %s", arg, *r.Min, x)
	case r.Max != nil && n > *r.Max:
		return fmt.Sprintf("%s must be at most %d, not %s", arg, *r.Max, x)
	}
	return ""
}

func checkList(r TypeRule, x []any, arg string) string {
	if r.NonEmpty && len(x) == 0 {
		return fmt.Sprintf("%s must not be empty", arg)
	}
	for i, e := range x {
		where := fmt.Sprintf("%s: element %d", arg, i)
		if msg := checkElement(r, e, where); msg != "" {
			return msg
		}
		if r.Unique {
			for _, earlier := range x[:i] {
				if reflect.DeepEqual(earlier, e) {
					return fmt.Sprintf("%s is the same as an earlier one: list each once", where)
				}
			}
		}
	}
	return ""
}

func checkSet(r TypeRule, x map[string]any, prefix, name string) string {
	arg := prefix + "`" + name + "`"
	if r.Table != "" {
		return checkSub(r.Table, x, arg)
	}
	for _, k := range r.RequiredKeys {
		if _, ok := x[k]; !ok {
			return fmt.Sprintf("%s needs the attribute %s", arg, k)
		}
	}
	for _, k := range sortedKeys(x) {
		if r.Keys != nil && !contains(r.Keys, k) {
			return fmt.Sprintf("%s: unknown attribute %q; valid attributes are %s", arg, k, quoted(r.Keys))
		}
		if r.KeyPattern != "" && !fullMatch(r.KeyPattern, k) {
			return fmt.Sprintf("%s: %q must be %s", arg, k, r.KeyWhat)
		}
		if r.KeyNames != "" && !canonicalIn(k, r.Prefix, knownNames(r.KeyNames)) {
			return fmt.Sprintf("%s: unknown %s %q; valid names are %s", arg, r.NameWhat, k, strings.Join(knownNames(r.KeyNames), ", "))
		}
		if msg := checkElement(r, x[k], prefix+"`"+attrPath(name, k)+"`"); msg != "" {
			return msg
		}
	}
	return ""
}

// checkElement checks a list element or attribute value: its type, and the
// string rules (pattern, names) for strings and for the strings of a list
// value, or a sub-table's rows for an attribute set.
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
	case map[string]any:
		if r.ElementTable != "" {
			return checkSub(r.ElementTable, x, where)
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
	if r.MaxLength != nil && len(s) > *r.MaxLength {
		return fmt.Sprintf("%s must be at most %d bytes long, not %d", where, *r.MaxLength, len(s))
	}
	if r.Pattern != "" && !fullMatch(r.Pattern, s) {
		return fmt.Sprintf("%s must be %s, not %q", where, r.What, s)
	}
	if r.Names != "" && !canonicalIn(s, r.Prefix, knownNames(r.Names)) {
		return fmt.Sprintf("%s: unknown %s %q; valid names are %s", where, r.NameWhat, s, strings.Join(knownNames(r.Names), ", "))
	}
	return ""
}

// Decode checks data against the table (Check), applies the table's defaults
// to the arguments not given (a null default stays absent), and decodes the
// result into v strictly: the builders of images read their arguments so.
func (t *Table) Decode(data []byte, v any) error {
	fields, err := t.Check(data)
	if err != nil {
		return err
	}
	for name, a := range t.Rows {
		if _, given := fields[name]; !given && !a.NixOnly && len(a.Default) > 0 && string(a.Default) != "null" {
			fields[name] = a.Default
		}
	}
	full, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(full))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeDecodeError(err)
	}
	return nil
}

// CheckArgument checks one argument's value, as JSON, against its row, and
// returns it decoded (numbers exact).
func (t *Table) CheckArgument(name string, raw json.RawMessage) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("`%s`: %w", name, err)
	}
	if msg := checkValue("", name, t.Rows[name], v); msg != "" {
		return nil, errors.New(msg)
	}
	return v, nil
}
