package run

import (
	"fmt"
	"os"
	"syscall"
)

// overlayfsMagic is OVERLAYFS_SUPER_MAGIC: an overlay's upper layer cannot
// live on another overlay, which is what /tmp is inside many containers.
const overlayfsMagic = 0x794c7630

// upperParent picks the directory for the private bundle, whose upper layer
// must not be on an overlay: dir if given (an error if it is on one), else the
// first of $TMPDIR (or /tmp), $XDG_RUNTIME_DIR and /dev/shm that is not.
func upperParent(dir string) (string, error) {
	if dir != "" {
		if onOverlay(dir) {
			return "", fmt.Errorf("temporary directory %s is on an overlay file system, which cannot hold the writable layer: choose one on another file system", dir)
		}
		return dir, nil
	}
	candidates := []string{os.TempDir(), os.Getenv("XDG_RUNTIME_DIR"), "/dev/shm"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if fi, err := os.Stat(c); err != nil || !fi.IsDir() {
			continue
		}
		if !onOverlay(c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("%s, $XDG_RUNTIME_DIR and /dev/shm are on overlay file systems or missing, and the writable layer needs another: set TMPDIR to a directory on another file system", os.TempDir())
}

func onOverlay(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == overlayfsMagic
}
