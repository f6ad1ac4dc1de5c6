package spec

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Env is what generation needs to know about the build besides the options.
type Env struct {
	// StorePaths is the closure (absolute store paths, sorted). In bind mode each
	// is bind-mounted read-only at the same place.
	StorePaths []string
	// System is the Nix system of the build ("x86_64-linux"); the default arch
	// comes from it when Options.Arch is empty.
	System string
}

// ParseOptions decodes options strictly: an unknown field is an error naming it.
func ParseOptions(data []byte) (*Options, error) {
	return nil, errors.New("not implemented")
}

// Generate builds the runtime configuration. It does no I/O.
func Generate(o *Options, env Env) (*specs.Spec, error) {
	return nil, errors.New("not implemented")
}

// Validate checks a configuration against the runtime-spec JSON schema and the
// checks the schema cannot make; rootfs is the bundle's root directory, used to
// resolve process.args[0]. Each error is one line.
func Validate(s *specs.Spec, rootfs string) []error {
	return []error{errors.New("not implemented")}
}

// ValidateBundle reads BUNDLE/config.json and validates it against its rootfs.
func ValidateBundle(bundle string) []error {
	return []error{errors.New("not implemented")}
}
