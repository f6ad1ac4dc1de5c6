package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// closureNames returns the names (without hash) of the store paths closure.json lists.
func closureNames(t *testing.T, bundle string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(bundle, "closure.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths []struct {
			Path string `json:"path"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("closure.json: %v", err)
	}
	var names []string
	for _, p := range doc.Paths {
		base := filepath.Base(p.Path)
		names = append(names, base[33:])
	}
	sort.Strings(names)
	return names
}

// Every store path the configuration mentions is in the closure, not only those
// of args: env.PATH alone makes `ls` resolve, a bind mount's store source is
// copied (and in closure.json), store paths in annotations, hostname and
// extraConfig are there too, and text glued to a store path ("${pkg}.old",
// "x=${pkg}_y") roots the store path itself.
func TestClosureHasEveryMentionedStorePath(t *testing.T) {
	expr := `let
	  tools = runCommand "tools" { } "mkdir -p $out/bin; ln -s ${busybox}/bin/busybox $out/bin/ls; ln -s ${busybox}/bin/busybox $out/bin/cat";
	  data = runCommand "mounted-data" { } "mkdir -p $out; echo from-the-mount > $out/msg";
	  note = writeScript "note" "annotated";
	  host = writeScript "hostpart" "x";
	  extra = writeScript "extra-cfg" "x";
	  glued = writeScript "glued" "x";
	in ociTools.buildContainer {
	  args = [ "ls" "/mnt/msg" ];
	  env.PATH = "${tools}/bin";
	  mounts."/mnt" = { type = "bind"; source = "${data}"; options = [ "rbind" "ro" ]; };
	  annotations."org.example.note" = "${note}";
	  annotations."org.example.glued" = "x=${glued}_y ${glued}.old";
	  extraConfig.annotations."org.example.extra" = "${extra}";
	}`
	bundle := nixBuild(t, expr)
	if got := runBundle(t, bundle); got != "/mnt/msg\n" {
		t.Errorf("container printed %q, want ls to find /mnt/msg", got)
	}
	got := closureNames(t, bundle)
	want := []string{"busybox", "extra-cfg", "glued", "mounted-data", "note", "tools"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("closure.json lists %v, want %v", got, want)
	}
	for _, name := range want {
		storeEntry(t, bundle, name)
	}
}

// closureRoots (nix/lib.nix) by itself: the store paths, cut where the context
// says they end, from any nesting; a literal store path without context and
// strings without context give nothing.
func TestClosureRootsHelper(t *testing.T) {
	requireE2E(t)
	expr := `let
	  inherit (import ` + repoRoot + `/nix/lib.nix) closureRoots;
	  src = builtins.path { path = ` + busyboxDir + `; name = "bb"; };
	  d = derivation { name = "hello-2.12"; system = "x"; builder = "/x"; outputs = [ "out" "dev" ]; };
	  show = v: map (p: builtins.substring 44 100 (builtins.unsafeDiscardStringContext p)) (closureRoots v);
	in [
	  (show { env.PATH = "${d}/bin"; })
	  (show [ "${d}.old" { x = [ "x=${d.dev}_y" ]; } ])
	  (show { a = "${src}/bin/sh /nix/store/00000000000000000000000000000000-literal"; })
	  (show d)
	  (show { a = "/nix/store/00000000000000000000000000000000-literal"; b = [ 1 true null ]; })
	]`
	out := mustOutput(t, exec.Command("nix-instantiate", "--eval", "--strict", "--read-write-mode", "--json", "--expr", expr))
	want := `[["hello-2.12"],["hello-2.12","hello-2.12-dev"],["bb"],["hello-2.12"],[]]`
	if strings.TrimSpace(out) != want {
		t.Errorf("closureRoots gave %s, want %s", out, want)
	}
}

// Integers reach config.json with every digit, through Nix's structured attrs
// and the builder: 2^53+1 is not rounded to a float.
func TestIntegersKeepEveryDigit(t *testing.T) {
	bundle := nixBuild(t, `ociTools.buildContainer {
	  args = [ "${busybox}/bin/true" ];
	  env.BIG = 9007199254740993;
	  extraConfig.process.rlimits = [ { type = "RLIMIT_FSIZE"; soft = 9007199254740993; hard = 9007199254740993; } ];
	}`)
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"BIG=9007199254740993"`, `"soft": 9007199254740993`, `"hard": 9007199254740993`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("config.json lacks %s:\n%s", want, data)
		}
	}
}
