package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// Every ociTools derivation builds where its closure is (preferLocalBuild):
// with a build hook that cannot start, they all still build, while a plain
// derivation fails, which shows that Nix did consult the hook.
func TestBuildsWithoutTheBuildHook(t *testing.T) {
	requireE2E(t)
	mark := randomID("local")
	noHook := []string{"--option", "build-hook", "/nonexistent/build-hook"}

	plain := fmt.Sprintf(`runCommand "plain-%s" { } "echo > $out"`, mark)
	if _, log, err := nixBuildResult(t, plain, noHook...); err == nil {
		t.Fatalf("a derivation without preferLocalBuild built with a build hook that cannot start; the test shows nothing\n%s", log)
	}

	expr := fmt.Sprintf(`
let
  reg = import %s/nix/registry.nix { ocitools = %s; };
  layer = ociTools.buildLayer { name = "layer-%[3]s"; deps = [ busybox ]; };
  image = reg.withCopyPrograms (ociTools.buildImage {
    name = "local-%[3]s";
    layers = [ layer ];
    config.Cmd = [ "${busybox}/bin/sh" ];
  });
  streamed = ociTools.streamImage { name = "streamed-%[3]s"; copyToRoot = [ busybox ]; };
  auto = ociTools.buildImage { name = "auto-%[3]s"; copyToRoot = [ busybox ]; layering = "auto-derivations"; };
in [
  (ociTools.buildContainer { args = [ "${busybox}/bin/sh" ]; env = [ "MARK=%[3]s" ]; })
  layer image image.archive image.copyTo streamed auto
  (reg.buildIndex { name = "index-%[3]s"; tag = "t"; images = [ image ]; })
]`, repoRoot, filepath.Dir(filepath.Dir(ocitoolsBin)), mark)
	// busybox is a path, not a derivation: nothing here needs the hook but
	// ociTools' own derivations.
	_, log, err := nixBuildResult(t, expr, noHook...)
	if err != nil {
		t.Fatalf("ociTools derivations did not build without the build hook: %v\n%s", err, log)
	}
	if n := strings.Count(log, "building '"); n < 9 {
		t.Errorf("built %d derivations, want at least 9 (the test's own, not earlier outputs)\n%s", n, log)
	}
}
