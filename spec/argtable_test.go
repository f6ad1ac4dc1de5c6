package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocitools/ocitools/options"
)

// tableCase is one value of one argument and what both sides must say of it.
type tableCase struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
	// want: "accept" (both), "refuse" (both, with the same message) or
	// "builder" (evaluation accepts, the builder refuses).
	Want string `json:"-"`
}

// otherTypes are one JSON value of each Nix type fromJSON gives.
var otherTypes = map[string]string{
	"string": `"x"`, "int": `7`, "bool": `true`, "list": `[]`, "set": `{}`, "null": `null`, "float": `1.5`,
}

// tableCases walks every row: its examples, refused and builderRefused values,
// and a value of every type the row does not accept.
func tableCases() []tableCase {
	var cases []tableCase
	table := options.Arguments()
	for _, name := range sortedKeys(table) {
		a := table[name]
		add := func(want string, vs []json.RawMessage) {
			for _, v := range vs {
				cases = append(cases, tableCase{Name: name, Value: v, Want: want})
			}
		}
		add("accept", a.Examples)
		add("refuse", a.Refused)
		add("builder", a.BuilderRefused)
		for _, typ := range sortedKeys(otherTypes) {
			ok := false
			for want := range a.Types {
				ok = ok || want == typ || (want == "stringlike" && typ == "string")
			}
			if !ok {
				cases = append(cases, tableCase{Name: name, Value: json.RawMessage(otherTypes[typ]), Want: "refuse"})
			}
		}
	}
	return cases
}

// Every row of the argument table, through both sides: nix/oci-tools.nix's
// checkArguments (real nix-instantiate) and the builder (options.Parse, Generate) agree on
// what they accept and refuse, with the same message; what only the builder
// refuses is listed as such in the table. Evaluated in one nix-instantiate run.
func TestArgumentTableBothSides(t *testing.T) {
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		if os.Getenv("OCITOOLS_E2E") == "1" {
			t.Fatalf("nix-instantiate is not installed (Debian package nix-bin): %v", err)
		}
		t.Skip("nix-instantiate is not installed: the Nix side of the argument table is not checked")
	}
	cases := tableCases()
	data, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "cases.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	wrapper, err := filepath.Abs("../nix/oci-tools.nix")
	if err != nil {
		t.Fatal(err)
	}
	expr := fmt.Sprintf(`let
	  ociTools = import %s { ocitools = "/nix/store/00000000000000000000000000000000-ocitools"; system = "x86_64-linux"; };
	  cases = builtins.fromJSON (builtins.readFile %s);
	in map (c: ociTools.checkArguments ({ args = [ "/bin/sh" ]; } // { ${c.name} = c.value; })) cases`, wrapper, file)
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
	rows := map[string]int{}
	for i, c := range cases {
		rows[c.Name]++
		nixErr := nixSays[i]
		where := fmt.Sprintf("%s = %s", c.Name, c.Value)
		if options.Arguments()[c.Name].NixOnly {
			if (c.Want == "accept") != (nixErr == nil) {
				t.Errorf("%s: want %s, Nix says %v", where, c.Want, deref(nixErr))
			}
			continue
		}
		opts := map[string]json.RawMessage{"args": json.RawMessage(`["/bin/sh"]`)}
		opts[c.Name] = c.Value
		js, _ := json.Marshal(opts)
		r, goErr := options.Parse(js, "x86_64-linux")
		if goErr == nil {
			_, goErr = Generate(r, nil)
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
	// Unknown names: the same suggestions (the lists of valid names differ:
	// name and copyToRoot never reach the builder).
	for _, name := range []string{"readOnly", "entrypoint", "envs", "x"} {
		expr := fmt.Sprintf(`(import %s { ocitools = "/nix/store/00000000000000000000000000000000-ocitools"; }).checkArguments { args = [ "/bin/sh" ]; %s = 1; }`, wrapper, name)
		out, err := exec.Command("nix-instantiate", "--eval", "--strict", "--json", "--expr", expr).Output()
		var nixMsg string
		if err != nil || json.Unmarshal(out, &nixMsg) != nil {
			t.Fatalf("nix-instantiate on %s: %v %s", name, err, out)
		}
		_, goErr := options.Parse([]byte(`{"args":["/bin/sh"],"`+name+`":1}`), "")
		nixHead, _, _ := strings.Cut(nixMsg, "; valid arguments are")
		if goErr == nil || !strings.HasPrefix(goErr.Error(), nixHead+"; valid arguments are") {
			t.Errorf("unknown argument %s: Nix says %q, Go says %v", name, nixMsg, goErr)
		}
	}
	for name, a := range options.Arguments() {
		if rows[name] == 0 || len(a.Examples) == 0 {
			t.Errorf("argument %s has no examples in the table", name)
		}
	}
	t.Logf("%d values of %d arguments checked on both sides", len(cases), len(rows))
}

func deref(s *string) string {
	if s == nil {
		return "<accepted>"
	}
	return strings.TrimSpace(*s)
}
