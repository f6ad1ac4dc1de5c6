package e2e

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

// Issue 16 items 3-4: past maxLayers, a new version of the application
// changes one layer; the push of v2 after v1 sends that layer and the config
// (counted from the registry's log), and with a list of groups the groups'
// layers are the same store paths in both builds (nothing recompressed).

// closure150Expr is an image over a 150-path closure made with
// builtins.toFile (nothing to build): 40 small shared libraries, 12 large
// ones (about 1-2 MiB) each over 8 helpers, one more path, and the app,
// whose text holds the version.
func closure150Expr(version, layering string) string {
	return fmt.Sprintf(`let
  inherit (builtins) toFile genList concatStringsSep elemAt foldl';
  k = concatStringsSep "" (genList (_: "0123456789abcdef") 64);
  pad = n: seed: concatStringsSep "" (genList (i: "${seed}${toString i}${k}") n);
  shared = foldl' (acc: i: acc ++ [ (toFile "small-${toString i}" "small ${toString i} ${if i == 0 then "" else elemAt acc (i - 1)}") ]) [ ] (genList (i: i) 40);
  helper = b: h: toFile "helper-${toString b}-${toString h}" "helper ${toString b} ${toString h} ${elemAt shared (builtins.bitAnd (b * 3 + h) 31)}";
  big = genList (b: toFile "big-${toString b}" "big ${toString b} ${concatStringsSep " " (genList (helper b) 8)} ${elemAt shared b} ${elemAt shared (39 - b)} ${pad (1000 + 100 * b) "b${toString b}"}") 12;
  misc = toFile "misc" "misc ${elemAt shared 7}";
  app = toFile "app" "app %[1]s ${concatStringsSep " " big} ${misc}";
in
ociTools.buildImage {
  name = "ocitools-e2e/layering";
  tag = "%[1]s";
  maxLayers = 20;
  layering = %[2]s;
  config.Env = [ "APP=${app}" ];
}`, version, layering)
}

func TestImageLayeringPush(t *testing.T) {
	requireTools(t, "docker-registry")
	r := startRegistry(t, registryOpts{})
	env := isolatedEnv(t)
	for name, layering := range map[string]string{
		"auto": `"auto"`,
		// The auto groups, each a layer derivation of its own.
		"auto-derivations": `"auto-derivations"`,
		// The large libraries in two groups: two buildLayer derivations.
		"groups": `[ (genList (b: elemAt big b) 6) (genList (b: elemAt big (b + 6)) 6) ]`,
	} {
		t.Run(name, func(t *testing.T) {
			// Versions of their own: the same app layer in another subtest's
			// repository would be mounted, not sent.
			v1 := readImage(t, nixBuildImage(t, closure150Expr("v1-"+name, layering)))
			v2 := readImage(t, nixBuildImage(t, closure150Expr("v2-"+name, layering)))
			paths := 0
			for _, ps := range v1.storePaths() {
				paths += len(ps)
			}
			// auto: up to 20 layers over the 150 paths; groups: the two
			// groups, then the few paths they leave, one layer each.
			if n := len(v1.manifest.Layers); name != "groups" && (n > 20 || n < 10 || paths != 150) {
				t.Errorf("v1 has %d layers naming %d store paths, want 10 to 20 layers holding the 150 paths of the closure", n, paths)
			}
			old := map[string]bool{}
			for _, l := range v1.manifest.Layers {
				old[string(l.Digest)] = true
			}
			var changed []string
			for _, l := range v2.manifest.Layers {
				if !old[string(l.Digest)] {
					changed = append(changed, string(l.Digest))
				}
			}
			if len(changed) != 1 {
				t.Fatalf("%d layers changed between v1 and v2, want 1 (the app's): %v", len(changed), changed)
			}
			repo := "layering/" + name
			push(t, env, v1.dir, r.addr+"/"+repo+":v1")
			m := r.mark()
			push(t, env, v2.dir, r.addr+"/"+repo+":v2")
			want := []string{changed[0], string(v2.manifest.Config.Digest)}
			sort.Strings(want)
			// What the image took: v2's SBOM referrer (its blobs, the
			// referrer and the sha256-<hex> index) is left out.
			tr := r.traffic(m, repo)
			tr.blobsSent, tr.manifestPuts = imageBlobsSent(t, tr, v2.dir), tr.manifestPuts-referrerManifestPuts
			wantSent(t, "push of v2 after v1", tr, want, 0, 1)
			if name == "auto-derivations" {
				// Every layer but the root layer (on top) is a link to a
				// layer derivation; only the app's group was built again.
				rebuilt := 0
				for i := range v2.manifest.Layers[:len(v2.manifest.Layers)-1] {
					a, errA := os.Readlink(v1.blob(v1.manifest.Layers[i].Digest.Encoded()))
					b, errB := os.Readlink(v2.blob(v2.manifest.Layers[i].Digest.Encoded()))
					if errA != nil || errB != nil {
						t.Fatalf("layer %d is not a link to a layer derivation: %v %v", i, errA, errB)
					}
					if a != b {
						rebuilt++
					}
				}
				if rebuilt != 1 {
					t.Errorf("%d layer derivations differ between v1 and v2, want 1 (the app's group)", rebuilt)
				}
			}
			if name != "groups" {
				return
			}
			// The groups' layers are links to the same buildLayer outputs:
			// v2's build reused them (Nix does not build a valid path again).
			for i := 0; i < 2; i++ {
				a, errA := os.Readlink(v1.blob(v1.manifest.Layers[i].Digest.Encoded()))
				b, errB := os.Readlink(v2.blob(v2.manifest.Layers[i].Digest.Encoded()))
				if errA != nil || errB != nil || a != b || !strings.HasSuffix(a, "/blob") {
					t.Errorf("group %d: v1 links %q (%v), v2 links %q (%v); want the same buildLayer output", i, a, errA, b, errB)
				}
			}
		})
	}
}

// Issue 16 item 1 with the default layering: two images built by their own
// derivations cannot link to each other's blobs, but their common layers are
// the same bytes (pinned compression), so Nix's own store optimisation
// (auto-optimise-store, or nix-store --optimise) keeps one copy of each:
// v2 after v1 (only the app changed) costs the store the app's layer.
func TestImageLayersDeduplicatedByStoreOptimisation(t *testing.T) {
	build := func(version string) *imageLayout {
		out, log, err := nixBuildResult(t, closure150Expr(version, `"popularity"`), "--option", "auto-optimise-store", "true")
		if err != nil {
			t.Fatalf("nix-build %s: %v\n%s", version, err, log)
		}
		return readImage(t, out)
	}
	v1, v2 := build("optimise-v1"), build("optimise-v2")
	in1 := map[string]bool{}
	for _, l := range v1.manifest.Layers {
		in1[l.Digest.Encoded()] = true
	}
	shared, linked := 0, 0
	for _, l := range v2.manifest.Layers {
		if !in1[l.Digest.Encoded()] {
			continue
		}
		shared++
		a, errA := os.Stat(v1.blob(l.Digest.Encoded()))
		b, errB := os.Stat(v2.blob(l.Digest.Encoded()))
		if errA != nil || errB != nil {
			t.Fatalf("layer %s: %v %v", l.Digest, errA, errB)
		}
		if os.SameFile(a, b) {
			linked++
		}
	}
	// maxLayers 20: the most shared paths' layers are the same in both; the
	// merged tail (with the app) differs.
	if shared < 15 || linked != shared {
		t.Errorf("v1 and v2 share %d layers, %d of them one file in the store; want at least 15, all one file", shared, linked)
	}
}
