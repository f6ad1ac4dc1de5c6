// Package validate checks an OCI image layout: the image-spec JSON schemas,
// and what they cannot check (every blob present with its digest and size,
// diff_ids matching the uncompressed layers, the entrypoint present in the
// layers). A layout is treated as hostile: sizes are bounded, blobs are read
// through os.Root (no path or symlink escapes), nothing is written.
package validate

import (
	"bytes"
	"embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ocitools/ocitools/internal/schemaset"
)

//go:generate go run ../../internal/schemacopy github.com/opencontainers/image-spec schema ./image/validate

//go:embed schema/*.json
var schemaFS embed.FS

// schemaURLs are the URLs each schema file is known by: its own id, and the
// ones its neighbours' relative $refs resolve to from their (nested) ids.
var schemaURLs = map[string][]string{
	"config-schema.json":         {"https://opencontainers.org/schema/image/config"},
	"content-descriptor.json":    {"https://opencontainers.org/schema/descriptor", "https://opencontainers.org/schema/image/content-descriptor.json"},
	"defs-descriptor.json":       {"https://opencontainers.org/schema/image/descriptor/mediaType", "https://opencontainers.org/schema/defs-descriptor.json", "https://opencontainers.org/schema/image/defs-descriptor.json"},
	"defs.json":                  {"https://opencontainers.org/schema/defs.json", "https://opencontainers.org/schema/image/defs.json", "https://opencontainers.org/schema/image/descriptor/defs.json"},
	"image-index-schema.json":    {"https://opencontainers.org/schema/image/index"},
	"image-layout-schema.json":   {"https://opencontainers.org/schema/image/layout"},
	"image-manifest-schema.json": {"https://opencontainers.org/schema/image/manifest"},
}

var (
	schemaOnce sync.Once
	schemas    map[string]*jsonschema.Schema
	schemaErr  error
)

func compiled(file string) (*jsonschema.Schema, error) {
	schemaOnce.Do(func() {
		c, err := schemaset.Compiler("image-spec", schemaFS, "schema", schemaURLs, jsonschema.Draft4, nil)
		if err != nil {
			schemaErr = err
			return
		}
		schemas = map[string]*jsonschema.Schema{}
		for _, f := range []string{"config-schema.json", "content-descriptor.json", "image-index-schema.json", "image-layout-schema.json", "image-manifest-schema.json"} {
			s, err := c.Compile(schemaURLs[f][0])
			if err != nil {
				schemaErr = fmt.Errorf("compiling the embedded %s: %w", f, err)
				return
			}
			schemas[f] = s
		}
	})
	if schemaErr != nil {
		return nil, schemaErr
	}
	return schemas[file], nil
}

// checkSchema validates data against one of the image-spec schemas.
func checkSchema(file string, data []byte) error {
	s, err := compiled(file)
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("does not match the image-spec schema (%s): %v", file, err)
	}
	return nil
}
