// Package tabletest runs every row of an argument table (options/known.json)
// through both sides: nix/table.nix at evaluation (a real nix-instantiate)
// and a builder's Go parser. Both must accept the row's examples, refuse its
// refused values with the same sentence, and the builder must refuse what the
// row lists as builderRefused; a value of every type the row does not accept
// is refused too. The packages that own a builder call Run from a test.
package tabletest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ocitools/ocitools/options"
)

// Sides says how one table is checked.
type Sides struct {
	// Table is the table's name (options.TableOf); Function the one whose
	// arguments Nix checks (the table itself, or the table a sub-table's
	// rows are the values of one argument of).
	Table, Function string
	// NixBase and GoBase are the other arguments each side is given (JSON
	// objects): what the function requires.
	NixBase, GoBase string
	// Wrap turns a row's name and value into the argument that carries it
	// (a sub-table's row is the attribute of one argument); nil for none.
	Wrap func(name string, v json.RawMessage) (string, json.RawMessage)
	// Go is the builder's parser of a whole JSON object of arguments.
	Go func(args []byte) error
}

// Case is one value of one row and what both sides must say of it.
type Case struct {
	Row   string          `json:"-"`
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
	// Want is "accept" (both), "refuse" (both, the same message) or
	// "builder" (evaluation accepts, the builder refuses).
	Want string `json:"-"`
}

// otherTypes are one JSON value of each Nix type fromJSON gives.
var otherTypes = map[string]string{
	"string": `"x"`, "int": `7`, "bool": `true`, "list": `[]`, "set": `{}`, "null": `null`, "float": `1.5`,
}

// Cases walks every row: its examples, refused and builderRefused values,
// and a value of every type the row does not accept.
func Cases(s Sides) []Case {
	var cases []Case
	table := options.TableOf(s.Table).Rows
	for _, row := range slices.Sorted(maps.Keys(table)) {
		a := table[row]
		add := func(want string, v json.RawMessage) {
			name := row
			if s.Wrap != nil {
				name, v = s.Wrap(row, v)
			}
			cases = append(cases, Case{Row: row, Name: name, Value: v, Want: want})
		}
		for _, l := range []struct {
			want string
			vs   []json.RawMessage
		}{{"accept", a.Examples}, {"refuse", a.Refused}, {"builder", a.BuilderRefused}} {
			for _, v := range l.vs {
				add(l.want, v)
			}
		}
		for _, typ := range slices.Sorted(maps.Keys(otherTypes)) {
			ok := false
			for want := range a.Types {
				ok = ok || want == typ || (want == "stringlike" && typ == "string")
			}
			if !ok {
				add("refuse", json.RawMessage(otherTypes[typ]))
			}
		}
	}
	return cases
}

// Run checks every case of s on both sides.
func Run(t *testing.T, s Sides) {
	t.Helper()
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		if os.Getenv("OCITOOLS_E2E") == "1" {
			t.Fatalf("nix-instantiate is not installed (Debian package nix-bin): %v", err)
		}
		t.Skip("nix-instantiate is not installed: the Nix side of the argument table is not checked")
	}
	cases := Cases(s)
	nixSays := evalNix(t, s, cases)
	table := options.TableOf(s.Table).Rows
	rows := map[string]int{}
	for i, c := range cases {
		rows[c.Row]++
		where := fmt.Sprintf("%s: %s = %s", s.Table, c.Name, c.Value)
		nixErr := nixSays[i]
		if table[c.Row].NixOnly {
			if (c.Want == "accept") != (nixErr == nil) {
				t.Errorf("%s: want %s, Nix says %v", where, c.Want, deref(nixErr))
			}
			continue
		}
		var args map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s.GoBase), &args); err != nil {
			t.Fatal(err)
		}
		args[c.Name] = c.Value
		js, _ := json.Marshal(args)
		goErr := s.Go(js)
		if table[c.Row].Internal {
			// The wrapper sets it (and refuses it from a caller): the builder
			// alone reads it.
			if (c.Want == "accept") != (goErr == nil) {
				t.Errorf("%s: want the builder to %s; Go says %v", where, c.Want, goErr)
			}
			continue
		}
		switch c.Want {
		case "accept":
			if nixErr != nil || goErr != nil {
				t.Errorf("%s: want both to accept; Nix says %v, Go says %v", where, deref(nixErr), goErr)
			}
		case "refuse":
			if nixErr == nil || goErr == nil {
				t.Errorf("%s: want both to refuse; Nix says %v, Go says %v", where, deref(nixErr), goErr)
			} else if *nixErr != goErr.Error() {
				t.Errorf("%s: the messages differ:\n  Nix: %s\n  Go:  %s", where, *nixErr, goErr)
			}
		case "builder":
			if nixErr != nil || goErr == nil {
				t.Errorf("%s: want evaluation to accept and the builder to refuse; Nix says %v, Go says %v", where, deref(nixErr), goErr)
			}
		}
	}
	for name, a := range table {
		if rows[name] == 0 || len(a.Examples) == 0 && a.Refuse == "" {
			t.Errorf("%s: argument %s has no examples in the table", s.Table, name)
		}
	}
	t.Logf("%s: %d values of %d arguments checked on both sides", s.Table, len(cases), len(rows))
}

// evalNix asks nix/table.nix about every case in one nix-instantiate run.
func evalNix(t *testing.T, s Sides, cases []Case) []*string {
	data, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	// Read here so that go test's cache knows the result depends on them
	// (nix-instantiate reads them in another process).
	for _, f := range []string{"table.nix", "lib.nix"} {
		if _, err := os.ReadFile(filepath.Join(RepoRoot(t), "nix", f)); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "cases.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	expr := fmt.Sprintf(`let
	  table = import %s;
	  base = builtins.fromJSON %q;
	  cases = builtins.fromJSON (builtins.readFile %s);
	in map (c: table.check %q (base // { ${c.name} = c.value; })) cases`,
		filepath.Join(RepoRoot(t), "nix", "table.nix"), s.NixBase, file, s.Function)
	cmd := exec.Command("nix-instantiate", "--eval", "--strict", "--json", "--expr", expr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-instantiate: %v\n%s", err, stderr.String())
	}
	var nixSays []*string
	if err := json.Unmarshal(out, &nixSays); err != nil || len(nixSays) != len(cases) {
		t.Fatalf("nix-instantiate printed %s: %v", out, err)
	}
	return nixSays
}

// RepoRoot is the directory holding go.mod, above the test's package.
func RepoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func deref(s *string) string {
	if s == nil {
		return "<accepted>"
	}
	return strings.TrimSpace(*s)
}
