package validate

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSchemasCompile(t *testing.T) {
	for f := range schemaURLs {
		if f == "defs.json" || f == "defs-descriptor.json" {
			continue
		}
		if _, err := compiled(f); err != nil {
			t.Fatal(err)
		}
	}
}

// The embedded copy is the schema of the image-spec version go.mod requires:
// go generate made it, and it must not drift.
func TestSchemaCopyMatchesModule(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/opencontainers/image-spec").Output()
	if err != nil {
		t.Skipf("module cache not available: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		t.Fatalf("no schemas in %s", dir)
	}
	for _, f := range files {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join("schema", filepath.Base(f)))
		if err != nil || string(got) != string(want) {
			t.Errorf("schema/%s differs from %s: run go generate ./image/validate", filepath.Base(f), f)
		}
		if _, ok := schemaURLs[filepath.Base(f)]; !ok {
			t.Errorf("%s has no URLs in schemaURLs", filepath.Base(f))
		}
	}
}

func TestSchemaCatches(t *testing.T) {
	tests := []struct {
		file, doc string
		ok        bool
	}{
		{"image-layout-schema.json", `{"imageLayoutVersion":"1.0.0"}`, true},
		{"image-layout-schema.json", `{}`, false},
		{"content-descriptor.json", `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1}`, true},
		{"content-descriptor.json", `{"mediaType":"x","digest":"nope","size":1}`, false},
		{"image-manifest-schema.json", `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:` + strings.Repeat("b", 64) + `","size":2}]}`, true},
		{"image-manifest-schema.json", `{"schemaVersion":1}`, false},
		{"config-schema.json", `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`, true},
		{"config-schema.json", `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Env":"A=b"}}`, false},
	}
	for _, tt := range tests {
		err := checkSchema(tt.file, []byte(tt.doc))
		if (err == nil) != tt.ok {
			t.Errorf("%s %s: %v", tt.file, tt.doc, err)
		}
	}
}
