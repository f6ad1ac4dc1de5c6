// Package nar computes the NAR hash of a path on disk, the way Nix does for
// a store path's narHash, without holding the archive in memory.
package nar

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"hash"

	gonar "github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixhash"
)

// countingHash feeds a SHA-256 and counts the bytes, which is the NAR size.
type countingHash struct {
	h hash.Hash
	n uint64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += uint64(len(p))
	return c.h.Write(p)
}

// HashPath serialises path as a NAR and returns its SHA-256 and its size in
// bytes. Symlinks are recorded, never followed; a regular file is executable
// when its owner-execute bit is set, as in Nix. Memory use does not depend on the
// size of the tree (only one directory listing per level is held).
func HashPath(path string) (*nixhash.Hash, uint64, error) {
	ch := &countingHash{h: sha256.New()}
	// The NAR writer emits many small tokens; batching them makes hashing
	// cost about the same per byte for small and large files.
	bw := bufio.NewWriterSize(ch, 64*1024)
	if err := gonar.DumpPath(bw, path); err != nil {
		return nil, 0, fmt.Errorf("NAR-hashing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return nil, 0, fmt.Errorf("NAR-hashing %s: %w", path, err)
	}
	h, err := nixhash.NewHash(nixhash.SHA256, ch.h.Sum(nil))
	if err != nil {
		return nil, 0, fmt.Errorf("NAR-hashing %s: %w", path, err)
	}
	return h, ch.n, nil
}

// Format renders a hash as Nix writes narHash: "sha256:" and Nix base32.
func Format(h *nixhash.Hash) string {
	return h.Format(nixhash.NixBase32, true)
}
