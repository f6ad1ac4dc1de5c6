package unpack

import (
	"errors"
	"fmt"
	"strings"
)

// maxPathLen bounds an entry's path (Linux's PATH_MAX).
const maxPathLen = 4096

// Errors for entry names that no honest layer holds; the image is refused.
var (
	errAbsolute = errors.New("is an absolute path (layer entries are relative to the root)")
	errDotDot   = errors.New("has a \"..\" component (it could name something outside the root)")
)

// entryPath checks and cleans the name of a layer entry (or a hard link's
// target). The result is relative and clean, "" for the root itself. Leading
// "./" is what tar writes for `tar -C dir .` and is dropped; an absolute path
// or a ".." component anywhere is refused, whatever it would resolve to.
func entryPath(name string) (string, error) {
	if name == "" {
		return "", errors.New("is empty")
	}
	if strings.ContainsRune(name, 0) {
		return "", errors.New("contains a NUL byte")
	}
	if strings.HasPrefix(name, "/") {
		return "", errAbsolute
	}
	var out []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
		case "..":
			return "", errDotDot
		default:
			out = append(out, c)
		}
	}
	p := strings.Join(out, "/")
	if len(p) > maxPathLen {
		return "", fmt.Errorf("is %d bytes long; paths are at most %d", len(p), maxPathLen)
	}
	return p, nil
}

// Whiteout names, per the OCI image spec's layer changesets.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueName     = ".wh..wh..opq"
)

type whiteoutKind int

const (
	notWhiteout    whiteoutKind = iota
	whiteoutFile                // .wh.NAME: remove NAME from the layers below
	whiteoutOpaque              // .wh..wh..opq: hide what the layers below have in this directory
	whiteoutOther               // .wh..wh.* other than the opaque marker (aufs metadata): skipped
)

// classifyWhiteout tells whether the clean entry path p is a whiteout. For
// whiteoutFile it returns the directory and the name to remove; for
// whiteoutOpaque the directory. A whiteout naming ".", ".." or nothing is an
// error: it could only be meant to remove the directory itself or its parent.
func classifyWhiteout(p string) (kind whiteoutKind, dir, name string, err error) {
	dir, base := splitParent(p)
	switch {
	case !strings.HasPrefix(base, whiteoutPrefix):
		return notWhiteout, "", "", nil
	case base == opaqueName:
		return whiteoutOpaque, dir, "", nil
	case strings.HasPrefix(base, whiteoutMeta):
		return whiteoutOther, dir, "", nil
	}
	name = strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return notWhiteout, "", "", fmt.Errorf("is a whiteout naming %q, which is not an entry of its directory", name)
	}
	return whiteoutFile, dir, name, nil
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
