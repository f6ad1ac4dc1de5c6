// Package rootfs materialises a closure as a bundle's root filesystem.
package rootfs

import (
	"errors"

	"github.com/ocitools/ocitools/derivation"
)

// Plan says what goes into a rootfs.
type Plan struct {
	Closure *derivation.Closure
	// Mode is "copy" (the closure under nix/store) or "bind" (mount points only).
	Mode string
	// Verify checks every copied path against its narHash.
	Verify bool
	// Contents are store paths whose top-level entries are linked into /.
	Contents []string
	// MountPoints are absolute paths that must exist as directories (or files, for
	// bind mounts of files: see MountFiles) before any runtime starts.
	MountPoints []string
	MountFiles  []string
	// UID, GID and Groups feed the minimal /etc/passwd and /etc/group.
	UID, GID uint32
}

// Build creates dir (which must not exist) as a rootfs.
func Build(dir string, p Plan) error {
	return errors.New("not implemented")
}
