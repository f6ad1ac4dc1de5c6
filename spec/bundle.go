package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/internal/readfile"
	"github.com/ocitools/ocitools/layout"
)

// Bundle is a bundle whose config.json was read once: Config is decoded
// from exactly the bytes that were validated, so that a caller (run) acts on
// what was checked, not on a second read someone could have changed.
type Bundle struct {
	Dir    string
	Config *specs.Spec
}

// LoadBundle reads BUNDLE/config.json once, validates it against the
// runtime-spec schema and its rootfs, and returns it decoded. The schema
// sees the file's own bytes (a null that decoding would drop still counts),
// and a field the runtime spec does not define is a problem. The bundle is
// nil when the file cannot be read or decoded at all; problems then says
// why (the first wraps os.ErrNotExist when there is no config.json). It is
// the only reader of config.json for validate, run and verify.
func LoadBundle(dir string) (*Bundle, []error) {
	cfgPath := filepath.Join(dir, layout.ConfigFile)
	data, err := readfile.Regular(cfgPath, readfile.ConfigLimit)
	if err != nil {
		return nil, []error{fmt.Errorf("reading the configuration: %w", err)}
	}
	errs := schemaCheck(data)
	errs = append(errs, duplicateKeys(data)...)
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		// First, with where it is; the schema's findings after it.
		return nil, append([]error{fmt.Errorf("%s is not a valid runtime configuration: %s", cfgPath, describeJSONError(data, err))}, errs...)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var strict specs.Spec
	if err := dec.Decode(&strict); err != nil && strings.Contains(err.Error(), "unknown field") {
		errs = append(errs, fmt.Errorf("%s: %v (runtime-spec %s does not define it)", cfgPath, err, specs.Version))
	}
	b := &Bundle{Dir: dir, Config: &s}
	errs = append(errs, checkConfig(&s)...)
	if s.Root == nil || s.Root.Path != layout.RootfsDir {
		return b, errs // checkConfig said why
	}
	// Lstat: a rootfs that is a symlink would lead out of the bundle.
	rootfs := filepath.Join(dir, layout.RootfsDir)
	if fi, err := os.Lstat(rootfs); err != nil || !fi.IsDir() {
		return b, append(errs, fmt.Errorf("root.path %q: %s is not a directory (a symlink is not followed)", s.Root.Path, rootfs))
	}
	return b, append(errs, checkRootfs(&s, rootfs)...)
}

// ValidateBundle reads BUNDLE/config.json and validates it against its rootfs.
func ValidateBundle(bundle string) []error {
	_, errs := LoadBundle(bundle)
	return errs
}

// CoveringMount returns the mount a container sees at the clean path p, and
// its index: the last mount whose destination is p or one of its parents
// (below "/"), or nil. The last, not the deepest: a runtime applies mounts in
// their order (runc's mountToRootfs walks config.Mounts in order), so a
// mount at /a listed after one at /a/b is made over it and hides it.
// Validation, verify and run all use this rule.
func CoveringMount(mounts []specs.Mount, p string) (*specs.Mount, int) {
	for i := len(mounts) - 1; i >= 0; i-- {
		d := path.Clean(mounts[i].Destination)
		if d != "/" && (d == p || strings.HasPrefix(p, d+"/")) {
			return &mounts[i], i
		}
	}
	return nil, -1
}

// describeJSONError says where in data a decoding error is, as line:column.
func describeJSONError(data []byte, err error) string {
	var off int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err.Error()
	}
	line, col := 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

// EncodeConfig is config.json's content for cfg, as bundle and unpack
// write it; path names the file in the error. Past readfile.ConfigLimit it
// is refused with the message run and validate would give reading it: what
// a writer makes, its readers accept.
func EncodeConfig(path string, cfg *specs.Spec) ([]byte, error) {
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", path, err)
	}
	data = append(data, '\n')
	if err := readfile.CheckSize(path, int64(len(data)), readfile.ConfigLimit); err != nil {
		return nil, err
	}
	return data, nil
}
