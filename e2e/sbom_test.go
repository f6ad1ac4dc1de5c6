package e2e

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/sbom"
)

// sbomDoc is what the tests read back from a CycloneDX document.
type sbomDoc struct {
	Metadata struct {
		Component struct{ Type, Name, Version string } `json:"component"`
	} `json:"metadata"`
	Components   []sbomComponent  `json:"components"`
	Dependencies []sbomDependency `json:"dependencies"`
}

type sbomComponent struct {
	Ref        string                                        `json:"bom-ref"`
	Type       string                                        `json:"type"`
	Name       string                                        `json:"name"`
	Version    string                                        `json:"version"`
	Purl       string                                        `json:"purl"`
	CPE        string                                        `json:"cpe"`
	Licenses   []struct{ License struct{ ID, Name string } } `json:"licenses"`
	Properties []struct{ Name, Value string }                `json:"properties"`
}

type sbomDependency struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn"`
}

func (d *sbomDoc) prop(i int, name string) string {
	for _, p := range d.Components[i].Properties {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// readSBOM reads a CycloneDX file and holds it to the official schema, with
// the project's validator and with CycloneDX's own JavaScript library.
func readSBOM(t *testing.T, file string) *sbomDoc {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := sbom.Validate(data); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	cyclonedxLibraryValidate(t, file)
	var d sbomDoc
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

var (
	cdxLibOnce sync.Once
	cdxLibDir  string
	cdxLibErr  error
)

// cyclonedxLibraryValidate runs @cyclonedx/cyclonedx-library's strict JSON
// validator (CycloneDX's own, on ajv) on file: a validator nobody here wrote.
// The package is installed once per run into the harness's directory. Its
// releases from 8.0 need Node 20.18; Debian 12's Node 18 gets 7.1.0, which
// validates CycloneDX 1.6 as well.
func cyclonedxLibraryValidate(t *testing.T, file string) {
	t.Helper()
	requireTools(t, "node", "npm")
	cdxLibOnce.Do(func() { cdxLibDir, cdxLibErr = installCycloneDXLibrary() })
	if cdxLibErr != nil {
		t.Fatal(cdxLibErr)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "cdx-validate.cjs"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script, file)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(cdxLibDir, "node_modules"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "valid ") {
		t.Fatalf("@cyclonedx/cyclonedx-library: %v\n%s", err, out)
	}
}

func installCycloneDXLibrary() (string, error) {
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("node --version: %w", err)
	}
	version := "7.1.0"
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "v%d.%d", &major, &minor); err == nil && (major > 20 || (major == 20 && minor >= 18)) {
		version = "10.3.0"
	}
	dir := filepath.Join(workDir, "npm-cyclonedx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", dir,
		"@cyclonedx/cyclonedx-library@"+version, "ajv@8", "ajv-formats@3", "ajv-formats-draft2019@1")
	cmd.Env = append(os.Environ(), "npm_config_cache="+filepath.Join(dir, ".cache"))
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm install @cyclonedx/cyclonedx-library@%s: %v\n%s", version, err, msg)
	}
	return dir, nil
}

// layerStorePaths lists the store paths the image's layers hold (their
// /nix/store/NAME entries), read from the blobs themselves.
func layerStorePaths(t *testing.T, img *imageLayout) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range img.manifest.Layers {
		f, err := os.Open(img.blob(l.Digest.Encoded()))
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = f
		switch l.MediaType {
		case v1.MediaTypeImageLayerGzip:
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		case v1.MediaTypeImageLayerZstd:
			zr, err := zstd.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			r = zr
		}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", l.Digest, err)
			}
			rest, ok := strings.CutPrefix(strings.TrimPrefix(h.Name, "./"), "nix/store/")
			if name, _, _ := strings.Cut(rest, "/"); ok && name != "" {
				seen["/nix/store/"+name] = true
			}
		}
		f.Close()
	}
	return slices.Sorted(func(yield func(string) bool) {
		for p := range seen {
			if !yield(p) {
				return
			}
		}
	})
}

// nixReferences asks the store (not the builder's input) for p's references.
func nixReferences(t *testing.T, p string) []string {
	t.Helper()
	out, err := exec.Command("nix-store", "--query", "--references", p).Output()
	if err != nil {
		t.Fatalf("nix-store --query --references %s: %v", p, err)
	}
	refs := strings.Fields(string(out))
	refs = slices.DeleteFunc(refs, func(r string) bool { return r == p })
	slices.Sort(refs)
	return refs
}

// checkSBOMGraph: the components are exactly paths, each with its NAR hash
// from the store, and the dependencies are exactly the store's references.
func checkSBOMGraph(t *testing.T, doc *sbomDoc, paths []string) {
	t.Helper()
	var refs []string
	for i, c := range doc.Components {
		refs = append(refs, c.Ref)
		if doc.prop(i, sbom.PropStorePath) != c.Ref {
			t.Errorf("%s: nix:storePath %q", c.Ref, doc.prop(i, sbom.PropStorePath))
		}
		out, err := exec.Command("nix-store", "--query", "--hash", c.Ref).Output()
		if err != nil {
			t.Fatalf("nix-store --query --hash %s: %v", c.Ref, err)
		}
		if got, want := doc.prop(i, sbom.PropNarHash), strings.TrimSpace(string(out)); got != want {
			t.Errorf("%s: nix:narHash %s, the store says %s", c.Ref, got, want)
		}
	}
	slices.Sort(refs)
	if !slices.Equal(refs, paths) {
		t.Fatalf("SBOM components\n  %v\nwant the image's store paths\n  %v", refs, paths)
	}
	for _, d := range doc.Dependencies {
		if d.Ref == "subject" {
			continue
		}
		got := slices.Clone(d.DependsOn)
		slices.Sort(got)
		if want := nixReferences(t, d.Ref); !slices.Equal(got, want) {
			t.Errorf("dependencies of %s: %v, the store's references %v", d.Ref, got, want)
		}
	}
	if len(doc.Dependencies) != len(paths)+1 {
		t.Errorf("%d dependency entries, want one per store path and the subject's", len(doc.Dependencies))
	}
}

// metaLet adds a package with evaluation metadata and an explicit layer to
// imageLet's application.
const metaLet = `let
  tool = runCommand "tool-1.2.3" { } "mkdir -p $out/bin; ln -s ${busybox}/bin/busybox $out/bin/tool" // {
    pname = "tool"; version = "1.2.3";
    meta = {
      description = "a tool";
      homepage = "https://tool.example/";
      license = [ { spdxId = "MIT"; fullName = "MIT License"; } { shortName = "unfree"; fullName = "Unfree"; } ];
      identifiers.cpe = "cpe:2.3:a:example:tool:1.2.3:*:*:*:*:*:*:*";
    };
  };
  extra = runCommand "extra-0.1" { } "mkdir -p $out; echo ${busybox} > $out/ref";
  base = ociTools.buildLayer { deps = [ extra ]; };
in `

// The SBOM of an image: the official schema and CycloneDX's own validator
// accept it; its components are the store paths the layers hold (an explicit
// layer's too), each with the NAR hash the store has; its dependencies are
// the store's references; evaluation metadata is there for the package that
// has it, the others are marked; nix-build --check reproduces it
// (nixBuildImage); the result's .sbom names it.
func TestImageSBOM(t *testing.T) {
	expr := imageLet + metaLet + `ociTools.buildImage {
	  name = "e2e/sbom"; tag = "v1";
	  config.Entrypoint = [ app ];
	  copyToRoot = [ tool ];
	  layers = [ base ];
	  sbom = [ "cyclonedx" "spdx" ];
	}`
	out := nixBuildImage(t, expr)
	img := readImage(t, out)
	doc := readSBOM(t, filepath.Join(out, sbom.CycloneDXFile))
	if c := doc.Metadata.Component; c.Type != "container" || c.Name != "e2e/sbom" || c.Version != "v1" {
		t.Errorf("subject %+v", c)
	}
	inLayers := layerStorePaths(t, img)
	checkSBOMGraph(t, doc, inLayers)
	// The image's store paths are the closure of what the layers hold.
	req, err := exec.Command("nix-store", append([]string{"--query", "--requisites"}, inLayers...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	if closure := slices.Sorted(slices.Values(strings.Fields(string(req)))); !slices.Equal(closure, inLayers) {
		t.Errorf("the layers hold %v, not closed under references: %v", inLayers, closure)
	}
	var sawTool, sawExtra bool
	for i, c := range doc.Components {
		switch {
		case strings.HasSuffix(c.Ref, "-tool-1.2.3"):
			sawTool = true
			if c.Name != "tool" || c.Version != "1.2.3" || c.CPE == "" || doc.prop(i, sbom.PropMetadata) != "evaluation" ||
				len(c.Licenses) != 2 || c.Licenses[0].License.ID != "MIT" || c.Licenses[1].License.Name != "Unfree" {
				t.Errorf("tool: %+v", c)
			}
		case strings.HasSuffix(c.Ref, "-extra-0.1"):
			sawExtra = true
			if c.Name != "extra" || c.Version != "0.1" || doc.prop(i, sbom.PropMetadata) != "none" {
				t.Errorf("extra (in the explicit layer, no metadata): %+v", c)
			}
		case doc.prop(i, sbom.PropMetadata) != "none":
			t.Errorf("%s has metadata %q, want none", c.Ref, doc.prop(i, sbom.PropMetadata))
		}
		if !strings.HasPrefix(c.Purl, "pkg:nix/"+c.Name) {
			t.Errorf("%s: purl %s", c.Ref, c.Purl)
		}
	}
	if !sawTool || !sawExtra {
		t.Errorf("tool %v, extra %v in the SBOM", sawTool, sawExtra)
	}
	var spdxDoc struct {
		SPDXVersion string            `json:"spdxVersion"`
		Packages    []json.RawMessage `json:"packages"`
	}
	readJSONFile(t, filepath.Join(out, sbom.SPDXFile), &spdxDoc)
	if spdxDoc.SPDXVersion != "SPDX-2.3" || len(spdxDoc.Packages) != len(inLayers)+1 {
		t.Errorf("SPDX: %s with %d packages, want %d", spdxDoc.SPDXVersion, len(spdxDoc.Packages), len(inLayers)+1)
	}
	attrs := nixEval(t, `let i = `+expr+`; in [ i.sbom i.sbomSPDX ]`)
	if attrs != fmt.Sprintf("[ %q %q ]", filepath.Join(out, sbom.CycloneDXFile), filepath.Join(out, sbom.SPDXFile)) {
		t.Errorf(".sbom, .sbomSPDX = %s", attrs)
	}
}

// Images have an SBOM by default; sbom = false leaves it out.
func TestImageSBOMDefault(t *testing.T) {
	on := nixBuildImage(t, imageLet+`ociTools.buildImage { name = "e2e/sbom-default"; config.Entrypoint = [ app ]; }`)
	doc := readSBOM(t, filepath.Join(on, sbom.CycloneDXFile))
	checkSBOMGraph(t, doc, layerStorePaths(t, readImage(t, on)))
	// ocitools validate checks the SBOM beside a layout against the schema.
	tampered := filepath.Join(t.TempDir(), "layout")
	if out, err := exec.Command("cp", "-r", on, tampered).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	f := filepath.Join(tampered, sbom.CycloneDXFile)
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"name":"no type"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ocitoolsBin, "validate", tampered).CombinedOutput(); err == nil || !strings.Contains(string(out), "CycloneDX 1.6 schema") {
		t.Errorf("ocitools validate of a layout with an invalid SBOM: %v\n%s", err, out)
	}
	off := nixBuildImage(t, imageLet+`ociTools.buildImage { name = "e2e/sbom-default"; config.Entrypoint = [ app ]; sbom = false; }`)
	if _, err := os.Stat(filepath.Join(off, sbom.CycloneDXFile)); !os.IsNotExist(err) {
		t.Errorf("sbom = false: %v", err)
	}
	if msg := nixBuildFail(t, imageLet+`ociTools.buildImage { name = "x"; config.Entrypoint = [ app ]; sbom = [ "swid" ]; }`); !strings.Contains(msg, `unknown value "swid"; valid values are "cyclonedx", "spdx"`) {
		t.Errorf("sbom = [ \"swid\" ]: %s", msg)
	}
}

// A bundle's SBOM (on by default) is its closure, as closure.json records it.
func TestBundleSBOM(t *testing.T) {
	expr := metaLet + `ociTools.buildContainer { args = [ "${tool}/bin/tool" "true" ]; contents = [ tool ]; sbom = [ "cyclonedx" "spdx" ]; }`
	out := nixBuild(t, expr)
	doc := readSBOM(t, filepath.Join(out, sbom.CycloneDXFile))
	var manifest struct {
		Paths []struct{ Path string } `json:"paths"`
	}
	readJSONFile(t, filepath.Join(out, "closure.json"), &manifest)
	var paths []string
	for _, p := range manifest.Paths {
		paths = append(paths, p.Path)
	}
	slices.Sort(paths)
	checkSBOMGraph(t, doc, paths)
	if c := doc.Metadata.Component; c.Type != "application" || !strings.HasSuffix(c.Name, "-oci-bundle") {
		t.Errorf("subject %+v", c)
	}
	if _, err := os.Stat(filepath.Join(out, sbom.SPDXFile)); err != nil {
		t.Error(err)
	}
	if got := nixEval(t, `(`+expr+`).sbom`); got != strconv.Quote(filepath.Join(out, sbom.CycloneDXFile)) {
		t.Errorf(".sbom = %s", got)
	}
	off := nixBuild(t, metaLet+`ociTools.buildContainer { args = [ "${tool}/bin/tool" ]; sbom = false; }`)
	if _, err := os.Stat(filepath.Join(off, sbom.CycloneDXFile)); !os.IsNotExist(err) {
		t.Errorf("sbom = false: %v", err)
	}
	// ocitools sbom reads a bundle's; exit status 3 when there is none.
	if out, err := exec.Command(ocitoolsBin, "sbom", out).Output(); err != nil || !strings.Contains(string(out), `"type": "application"`) {
		t.Errorf("ocitools sbom BUNDLE: %v", err)
	}
	var exit *exec.ExitError
	if msg, err := exec.Command(ocitoolsBin, "sbom", off).CombinedOutput(); !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(string(msg), "no SBOM") {
		t.Errorf("ocitools sbom of a bundle without one: %v\n%s", err, msg)
	}
}

// nixEval evaluates expr (with the test library) strictly and returns what
// nix-instantiate prints.
func nixEval(t *testing.T, expr string) string {
	t.Helper()
	out, err := exec.Command("nix-instantiate", "--eval", "--strict", nixFile(t, expr)).Output()
	if err != nil {
		t.Fatalf("nix-instantiate --eval: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// ParseName splits names as builtins.parseDrvName does, asked of Nix itself.
func TestParseNameAsNix(t *testing.T) {
	requireE2E(t)
	names := []string{"hello-2.12.1", "bash-interactive-5.2p37", "xz-5.4.6-bin", "busybox", "foo-_x", "foo-.1", "foo-", "a-B-1", "perl5.38.2-URI-5.21", "python3.12-pip-24.0", "openssl-3.0.13-dev", "source", "x-1-"}
	list, _ := json.Marshal(names)
	out, err := exec.Command("nix-instantiate", "--eval", "--strict", "--json", "-E",
		fmt.Sprintf(`map (n: let p = builtins.parseDrvName n; in [ p.name p.version ]) (builtins.fromJSON %s)`, strconv.Quote(string(list)))).Output()
	if err != nil {
		t.Fatal(err)
	}
	var nix [][2]string
	if err := json.Unmarshal(out, &nix); err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		if name, version := sbom.ParseName(n); name != nix[i][0] || version != nix[i][1] {
			t.Errorf("ParseName(%q) = %q, %q; builtins.parseDrvName says %q, %q", n, name, version, nix[i][0], nix[i][1])
		}
	}
}

// An image on a base image (fromImage): the base is one container component
// (its manifest digest) the image depends on; the store path components are
// what the image's own layers hold.
func TestImageSBOMFromImage(t *testing.T) {
	baseExpr := `ociTools.buildImage { name = "e2e/sbom-base"; tag = "b"; config.Entrypoint = [ "${busybox}/bin/sh" ]; }`
	base := readImage(t, nixBuildImage(t, baseExpr))
	out := nixBuildImage(t, imageLet+`ociTools.buildImage { name = "e2e/sbom-top"; tag = "t"; fromImage = `+baseExpr+`; config.Entrypoint = [ app ]; }`)
	img := readImage(t, out)
	own := &imageLayout{dir: img.dir, manifest: img.manifest}
	own.manifest.Layers = img.manifest.Layers[len(base.manifest.Layers):]
	doc := readSBOM(t, filepath.Join(out, sbom.CycloneDXFile))
	i := slices.IndexFunc(doc.Components, func(c sbomComponent) bool { return c.Ref == "base-image" })
	if i < 0 || doc.Components[i].Type != "container" || doc.Components[i].Version != base.index.Manifests[0].Digest.String() {
		t.Fatalf("no base-image component with the base's digest %s", base.index.Manifests[0].Digest)
	}
	if !slices.Contains(doc.Dependencies[0].DependsOn, "base-image") {
		t.Errorf("the image does not depend on its base: %+v", doc.Dependencies[0])
	}
	// The store path components are the image's own layers' contents.
	doc.Components = slices.Delete(doc.Components, i, i+1)
	doc.Dependencies = slices.DeleteFunc(doc.Dependencies, func(d sbomDependency) bool { return d.Ref == "base-image" })
	checkSBOMGraph(t, doc, layerStorePaths(t, own))
}
