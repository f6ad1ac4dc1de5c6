// Package layout names the parts of a bundle directory, for every package that
// writes or reads one (bundle, rootfs, spec, run, unpack, the CLI): one
// spelling each.
package layout

const (
	// ConfigFile is the runtime configuration, written last: a bundle that has
	// one is complete.
	ConfigFile = "config.json"
	// RootfsDir is the root file system (config.json's root.path).
	RootfsDir = "rootfs"
	// ClosureFile records the store mode and each store path of the closure
	// with its NAR hash, size and references (ocitools verify reads it).
	ClosureFile = "closure.json"
	// BinDir holds bin/<name>, a link to the ocitools that built the bundle,
	// which run under that name runs it (nix run); left out when the builder
	// does not know its own path.
	BinDir = "bin"
	// StoreDir is where store paths live, on the host and in the rootfs.
	StoreDir = "/nix/store"
)

// Symlink is a symbolic link the rootfs holds: Path (absolute, inside the
// rootfs) points to Target.
type Symlink struct {
	Path   string
	Target string
}
