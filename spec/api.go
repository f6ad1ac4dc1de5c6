package spec

// Env is what generation needs to know about the build besides the options.
type Env struct {
	// StorePaths is the closure (absolute store paths, sorted). In bind mode each
	// is bind-mounted read-only at the same place.
	StorePaths []string
	// System is the Nix system of the build ("x86_64-linux"); the default arch
	// comes from it when Options.Arch is empty.
	System string
}
