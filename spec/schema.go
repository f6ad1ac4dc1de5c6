package spec

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ocitools/ocitools/internal/schemaset"
)

//go:generate go run ../internal/schemacopy github.com/opencontainers/runtime-spec schema ./spec

// schemaFS is the runtime-spec JSON schema, copied from the module by go
// generate (see schema/README.md).
//
//go:embed schema/*.json
var schemaFS embed.FS

// schemaBase is the made-up URL the embedded files are registered under, so
// that their relative $refs ("defs.json#/...") resolve among them.
const schemaBase = "file:///runtime-spec/schema/"

var (
	schemaOnce sync.Once
	schemaVal  *jsonschema.Schema
	schemaErr  error
)

func configSchema() (*jsonschema.Schema, error) {
	schemaOnce.Do(func() {
		names, err := fs.Glob(schemaFS, "schema/*.json")
		if err != nil {
			schemaErr = err
			return
		}
		urls := map[string][]string{}
		for _, n := range names {
			base := strings.TrimPrefix(n, "schema/")
			urls[base] = []string{schemaBase + base}
		}
		c, err := schemaset.Compiler("runtime-spec", schemaFS, "schema", urls, jsonschema.Draft4, fixRefs)
		if err != nil {
			schemaErr = err
			return
		}
		schemaVal, schemaErr = c.Compile(schemaBase + "config-schema.json")
	})
	return schemaVal, schemaErr
}

// schemaCheck validates config.json bytes against the runtime-spec schema and
// returns one error per problem, each naming where in the document it is.
func schemaCheck(data []byte) []error {
	sch, err := configSchema()
	if err != nil {
		return []error{fmt.Errorf("loading the runtime-spec schema: %w", err)}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return []error{fmt.Errorf("config.json is not JSON: %w", err)}
	}
	err = sch.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []error{fmt.Errorf("schema: %w", err)}
	}
	seen := map[string]bool{}
	var msgs []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "/" + strings.Join(e.InstanceLocation, "/")
			msg := fmt.Sprintf("schema: at %s: %s", loc, e.BasicOutput().Error.String())
			if !seen[msg] {
				seen[msg] = true
				msgs = append(msgs, msg)
			}
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.Strings(msgs)
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		errs[i] = errors.New(m)
	}
	return errs
}

// fixRefs repairs, in memory, a typo of the upstream schema: defs.json (v1.3.0)
// has "$ref": "#definitions/uint32", a JSON pointer without its leading slash,
// which a strict validator reads as an unknown anchor. The files stay exact
// copies (a test compares them with the module's).
func fixRefs(doc any) {
	switch v := doc.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" && strings.HasPrefix(s, "#definitions/") {
				v[k] = "#/" + strings.TrimPrefix(s, "#")
				continue
			}
			fixRefs(x)
		}
	case []any:
		for _, x := range v {
			fixRefs(x)
		}
	}
}
