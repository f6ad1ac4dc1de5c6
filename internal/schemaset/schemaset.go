// Package schemaset compiles JSON schemas embedded in the binary (the
// runtime-spec's, the image-spec's, CycloneDX's). Each file is registered
// under the URLs its neighbours' $refs resolve to, and every other URL is
// refused: validation never reads the disk or the network.
package schemaset

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Compiler returns a compiler holding each file of dir in fsys that urls
// names, under each of its URLs. what names the schema in errors; draft, when
// not nil, is the draft of files that do not say theirs; fix, when not nil,
// rewrites each parsed document before it is registered.
func Compiler(what string, fsys fs.FS, dir string, urls map[string][]string, draft *jsonschema.Draft, fix func(doc any)) (*jsonschema.Compiler, error) {
	c := jsonschema.NewCompiler()
	if draft != nil {
		c.DefaultDraft(draft)
	}
	c.UseLoader(refuse(what))
	for file, us := range urls {
		data, err := fs.ReadFile(fsys, path.Join(dir, file))
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			// One parsed document per URL: the compiler keeps each.
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
			if err != nil {
				return nil, fmt.Errorf("embedded %s: %w", file, err)
			}
			if fix != nil {
				fix(doc)
			}
			if err := c.AddResource(u, doc); err != nil {
				return nil, fmt.Errorf("embedded %s as %s: %w", file, u, err)
			}
		}
	}
	return c, nil
}

// refuse is the loader of every URL not registered from the embedded copy.
type refuse string

func (r refuse) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s is not part of the embedded %s schema", url, string(r))
}
