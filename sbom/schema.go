package sbom

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ocitools/ocitools/internal/schemaset"
)

//go:generate go run ../internal/schemacopy github.com/CycloneDX/cyclonedx-go schema ./sbom

//go:embed schema/*.json
var schemaFS embed.FS

// schemaIDs are the files and the ids bom-1.6 refers to them by.
var schemaIDs = map[string]string{
	"bom-1.6.schema.json":   schemaURL,
	"spdx.schema.json":      "http://cyclonedx.org/schema/spdx.schema.json",
	"jsf-0.82.schemax.json": "http://cyclonedx.org/schema/jsf-0.82.schema.json",
}

var (
	schemaOnce sync.Once
	bomSchema  *jsonschema.Schema
	spdxIDs    map[string]bool
	schemaErr  error
)

func loadSchema() error {
	schemaOnce.Do(func() {
		urls := map[string][]string{}
		for file, id := range schemaIDs {
			urls[file] = []string{id}
		}
		c, err := schemaset.Compiler("CycloneDX", schemaFS, "schema", urls, nil, nil)
		if err != nil {
			schemaErr = err
			return
		}
		if bomSchema, schemaErr = c.Compile(schemaURL); schemaErr != nil {
			return
		}
		spdxIDs, schemaErr = loadSPDXIDs()
	})
	return schemaErr
}

// loadSPDXIDs reads the licence ids the schema accepts in license.id.
func loadSPDXIDs() (map[string]bool, error) {
	data, err := schemaFS.ReadFile("schema/spdx.schema.json")
	if err != nil {
		return nil, err
	}
	var s struct {
		Enum []string `json:"enum"`
	}
	if err := json.Unmarshal(data, &s); err != nil || len(s.Enum) == 0 {
		return nil, fmt.Errorf("embedded spdx.schema.json: no licence list (%v)", err)
	}
	ids := make(map[string]bool, len(s.Enum))
	for _, id := range s.Enum {
		ids[id] = true
	}
	return ids, nil
}

// KnownSPDX tells whether id is on the SPDX licence list the CycloneDX schema
// embeds (a license.id outside it makes the document invalid).
func KnownSPDX(id string) bool {
	if loadSchema() != nil {
		return false
	}
	return spdxIDs[id]
}

// Validate checks a CycloneDX document against the official 1.6 JSON schema.
func Validate(data []byte) error {
	if err := loadSchema(); err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if err := bomSchema.Validate(doc); err != nil {
		return fmt.Errorf("does not match the CycloneDX 1.6 schema: %v", err)
	}
	return nil
}
