package validate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocitools/ocitools/internal/schemadrift"
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
	schemadrift.Check(t, "github.com/opencontainers/image-spec", "schema", "go generate ./image/validate")
	for f := range schemaURLs {
		if _, err := os.Stat(filepath.Join("schema", f)); err != nil {
			t.Errorf("schemaURLs names %s, which is not in schema/", f)
		}
	}
	files, _ := filepath.Glob(filepath.Join("schema", "*.json"))
	for _, f := range files {
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
