// Package readfile reads small input files that may come from someone else (a
// bundle's config.json, closure.json) without trusting what they are: only a
// regular file is read, never a FIFO that blocks or a device that never ends,
// and never more than a size limit.
package readfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Limits for the files ocitools reads, each named once. A generated
// config.json is a few KiB and closure.json about 200 bytes per store path;
// the registry client reads credentials, a CA bundle and its blob location
// record.
const (
	// ConfigLimit bounds a bundle's config.json, read by run, validate and
	// verify, and written by unpack (which refuses a bigger one).
	ConfigLimit   = 4 << 20
	ManifestLimit = 64 << 20
	// AuthLimit bounds a docker/podman credentials file.
	AuthLimit = 1 << 20
	// CALimit bounds the PEM bundle of --ca.
	CALimit = 4 << 20
	// BlobCacheLimit bounds the registry's record of blob locations.
	BlobCacheLimit = 64 << 20
	// RunInfoLimit bounds the record a run leaves in its private bundle
	// (for the next run to reclaim it after SIGKILL).
	RunInfoLimit = 1 << 20
)

// Regular reads the regular file at path, at most limit bytes. A symlink as
// the last component is refused (the file must be inside the directory the
// caller named), and so is anything that is not a regular file: the open does
// not block on a FIFO (O_NONBLOCK) and the type is checked before any read.
func Regular(path string, limit int64) ([]byte, error) {
	return read(path, limit, syscall.O_NOFOLLOW)
}

// Following is Regular for a path the user named: a symlink is followed, and
// what it leads to must be a regular file.
func Following(path string, limit int64) ([]byte, error) {
	return read(path, limit, 0)
}

// CheckSize refuses size past limit with the message a reader gives, so
// that a writer (unpack writing config.json) refuses what its readers would,
// in the same words.
func CheckSize(path string, size, limit int64) error {
	if size > limit {
		return fmt.Errorf("%s is %d bytes, more than the %d bytes allowed", path, size, limit)
	}
	return nil
}

func read(path string, limit int64, flags int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY|flags, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s is a symbolic link: it must be a regular file inside the bundle", path)
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (mode %s): refusing to read it", path, fi.Mode().Type())
	}
	if err := CheckSize(path, fi.Size(), limit); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s grew past the %d bytes allowed while it was read", path, limit)
	}
	return data, nil
}
