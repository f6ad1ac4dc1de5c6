package spec

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocitools/ocitools/options"
	"github.com/ocitools/ocitools/options/tabletest"
)

// Every row of buildContainer's argument table, through both sides:
// nix/table.nix (what nix/oci-tools.nix checks, real nix-instantiate) and the
// builder (options.Parse, Generate) agree on what they accept and refuse,
// with the same message; what only the builder refuses is listed as such.
func TestArgumentTableBothSides(t *testing.T) {
	tabletest.Run(t, tabletest.Sides{
		Table: "buildContainer", Function: "buildContainer",
		NixBase: `{"args":["/bin/sh"]}`, GoBase: `{"args":["/bin/sh"]}`,
		Go: func(args []byte) error {
			r, err := options.Parse(args, "x86_64-linux")
			if err == nil {
				_, err = Generate(r, nil)
			}
			return err
		},
	})
	wrapper, err := filepath.Abs("../nix/oci-tools.nix")
	if err != nil {
		t.Fatal(err)
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
}
