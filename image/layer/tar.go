// Package layer writes the deterministic tar stream of one image layer: store
// paths (and generated entries such as a copyToRoot tree) under fixed metadata,
// so that the same inputs give the same bytes on every machine.
package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// MTime is the modification time of every entry: the Nix store's own (1 s
// after the epoch), so that a layer does not depend on the image's `created`
// and is shared by images that differ only in it.
var MTime = time.Unix(1, 0).UTC()

// Format is the one tar format layers use: PAX, which Go writes as plain USTAR
// headers unless a name or size needs a PAX record.
const Format = tar.FormatPAX

// StoreDirMode is the mode of /nix and /nix/store, the same in every layer so
// that the order layers are applied in does not change them.
const StoreDirMode = 0o755

// Perm overrides the metadata of a path in the image (the `perms` argument).
// A nil field keeps what the store has (uid and gid 0).
// A perm with Regex or Glob applies to every path it matches (at or below
// Path when Path is set), and counts its matches in Hits.
type Perm struct {
	Path      string `json:"path"`
	Mode      *int64 `json:"mode,omitempty"`
	UID       *int   `json:"uid,omitempty"`
	GID       *int   `json:"gid,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
	// Regex must match the whole absolute path; Glob is path.Match's.
	Regex *regexp.Regexp `json:"-"`
	Glob  string         `json:"-"`
	Hits  *atomic.Int64  `json:"-"`
}

// IsPattern reports whether the perm selects paths by a pattern.
func (p Perm) IsPattern() bool { return p.Regex != nil || p.Glob != "" }

func (p Perm) matches(name string) bool {
	if p.Path != "" && p.Path != "/" && name != p.Path && !strings.HasPrefix(name, p.Path+"/") {
		return false
	}
	if p.Regex != nil {
		return p.Regex.MatchString(name)
	}
	ok, _ := path.Match(p.Glob, name)
	return ok
}

// Entry is a generated entry (not read from the store as a whole store
// path): a directory, a symlink or a regular file, with its own mode and
// owner (Spec.UID and Spec.GID do not apply). The image's root layer is
// made of them: the copyToRoot tree, /etc/passwd and friends, `dirs`,
// `files`, the Nix database (image/rootentries.go).
type Entry struct {
	Path     string // absolute path in the image
	Dir      bool
	Linkname string // symlink target when neither Dir nor File
	// File makes a regular file holding Data, or the bytes of the host file
	// Host when Host is set (read when the layer is written).
	File bool
	Data []byte
	Host string
	// Mode is the permission bits (with setuid, setgid, sticky); 0 means
	// 0755 for a directory, 0644 for a file (a Host file keeps its own).
	Mode     int64
	UID, GID int
	// Origin names what asked for the entry (an argument, a package), for
	// error messages.
	Origin string
}

// Spec is what one layer holds.
type Spec struct {
	// StorePaths are absolute store paths, copied whole (recursively).
	StorePaths []string
	// Entries are generated directories and symlinks.
	Entries []Entry
	// Perms apply to matching entries of this layer.
	Perms []Perm
	// Root is prepended to store paths when reading them (tests); normally "".
	Root string
	// UID and GID own the store paths' entries and the parent directories
	// the layer writes (/nix, /nix/store): 0:0 unless the store belongs to a
	// user (single-user Nix, buildImage's nixUid and nixGid).
	UID, GID int
}

// ErrSpecial is returned for a file type a layer cannot hold (the Nix store
// holds only directories, regular files and symlinks).
var ErrSpecial = errors.New("not a directory, regular file or symlink")

// Write writes the layer's tar stream to w. Entries are sorted by path
// (directories before their contents), ownership is Spec.UID:Spec.GID (0:0
// by default; a generated entry's own) with no user or group names, every mtime is MTime, hard links are written as separate files and
// symlinks are kept.
func Write(w io.Writer, s Spec) error {
	tw := tar.NewWriter(w)
	lw := &writer{tw: tw, perms: newPermIndex(s.Perms), seen: map[string]bool{}, uid: s.UID, gid: s.GID}

	items := make([]item, 0, len(s.StorePaths)+len(s.Entries))
	for _, p := range s.StorePaths {
		clean := path.Clean(p)
		if !strings.HasPrefix(clean, "/nix/store/") || strings.Count(clean, "/") != 3 {
			return fmt.Errorf("layer: %q is not a store path", p)
		}
		items = append(items, item{image: clean, host: s.Root + clean})
	}
	for _, e := range s.Entries {
		e := e
		clean := path.Clean(e.Path)
		if !path.IsAbs(clean) || clean == "/" {
			return fmt.Errorf("layer: generated entry %q is not an absolute path below /", e.Path)
		}
		if e.Mode < 0 || e.Mode > 0o7777 || e.UID < 0 || e.GID < 0 || (e.Dir && e.File) {
			return fmt.Errorf("layer: generated entry %s: mode %o, owner %d:%d, directory %v and file %v: not a valid entry", e.Path, e.Mode, e.UID, e.GID, e.Dir, e.File)
		}
		items = append(items, item{image: clean, gen: &e})
	}
	sort.Slice(items, func(i, j int) bool { return lessPath(items[i].image, items[j].image) })
	for i := 1; i < len(items); i++ {
		if items[i].image == items[i-1].image {
			return fmt.Errorf("layer: %s is given twice", items[i].image)
		}
	}
	for _, it := range items {
		if err := lw.parents(it.image); err != nil {
			return err
		}
		if it.gen != nil {
			if err := lw.generated(it.gen); err != nil {
				return err
			}
			continue
		}
		if err := lw.tree(it.image, it.host); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	return nil
}

type item struct {
	image, host string
	gen         *Entry
}

// lessPath orders paths component by component, so that a directory's
// contents follow it directly ("/a/b" before "/a-b"), as a depth-first walk
// of sorted directories does.
func lessPath(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] != bs[i] {
			return as[i] < bs[i]
		}
	}
	return len(as) < len(bs)
}

type writer struct {
	tw    *tar.Writer
	perms permIndex
	seen  map[string]bool // parent directories already written
	uid   int             // owner of store entries and parents (Spec.UID)
	gid   int
	buf   []byte // file reads: large, so that a big file takes few read calls
}

// readBufSize is the read size for file contents.
const readBufSize = 512 << 10

// parents writes the directories above p that were not written yet: /nix and
// /nix/store with StoreDirMode, others (generated trees) 0755.
func (w *writer) parents(p string) error {
	dir := path.Dir(p)
	if dir == "/" || w.seen[dir] {
		return nil
	}
	if err := w.parents(dir); err != nil {
		return err
	}
	w.seen[dir] = true
	return w.header(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: StoreDirMode, Uid: w.uid, Gid: w.gid})
}

func (w *writer) generated(e *Entry) error {
	name := path.Clean(e.Path)
	switch {
	case e.Dir:
		w.seen[name] = true
		return w.header(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: orDefault(e.Mode, 0o755), Uid: e.UID, Gid: e.GID})
	case e.File && e.Host != "":
		fi, err := os.Lstat(e.Host)
		if err != nil {
			return fmt.Errorf("layer: %s: %w", name, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("layer: %s: %s: %w", name, e.Host, ErrSpecial)
		}
		return w.fileOwned(name, e.Host, fi.Size(), orDefault(e.Mode, modeBits(fi.Mode())), e.UID, e.GID)
	case e.File:
		if err := w.header(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(e.Data)), Mode: orDefault(e.Mode, 0o644), Uid: e.UID, Gid: e.GID}); err != nil {
			return err
		}
		if _, err := w.tw.Write(e.Data); err != nil {
			return fmt.Errorf("layer: %s: %w", name, err)
		}
		return nil
	default:
		return w.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: e.Linkname, Mode: 0o777, Uid: e.UID, Gid: e.GID})
	}
}

func orDefault(m, def int64) int64 {
	if m == 0 {
		return def
	}
	return m
}

// modeBits is a file mode as a tar header's mode: permissions plus setuid,
// setgid and sticky.
func modeBits(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// tree writes host (shown as image) and, for a directory, everything below it.
func (w *writer) tree(image, host string) error {
	fi, err := os.Lstat(host)
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	mode := modeBits(fi.Mode())
	switch {
	case fi.Mode().IsRegular():
		return w.file(image, host, fi.Size(), mode)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(host)
		if err != nil {
			return fmt.Errorf("layer: %w", err)
		}
		return w.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: image, Linkname: target, Mode: 0o777, Uid: w.uid, Gid: w.gid})
	case fi.IsDir():
		w.seen[image] = true
		if err := w.header(&tar.Header{Typeflag: tar.TypeDir, Name: image, Mode: mode, Uid: w.uid, Gid: w.gid}); err != nil {
			return err
		}
		ents, err := os.ReadDir(host) // sorted by name
		if err != nil {
			return fmt.Errorf("layer: %w", err)
		}
		for _, e := range ents {
			if err := w.tree(image+"/"+e.Name(), host+"/"+e.Name()); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("layer: %s: %w", host, ErrSpecial)
	}
}

func (w *writer) file(image, host string, size, mode int64) error {
	return w.fileOwned(image, host, size, mode, w.uid, w.gid)
}

func (w *writer) fileOwned(image, host string, size, mode int64, uid, gid int) error {
	// A plain blocking open: os.Open would also register the descriptor with
	// the runtime's poller (fcntl and a failing epoll_ctl per file), a cost
	// that dominates layers of many small files. O_NOFOLLOW: the walker saw a
	// regular file here, and a link swapped in since is not followed.
	fd, err := unix.Open(host, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("layer: open %s: %w", host, err)
	}
	f := os.NewFile(uintptr(fd), host)
	defer f.Close()
	if err := w.header(&tar.Header{Typeflag: tar.TypeReg, Name: image, Size: size, Mode: mode, Uid: uid, Gid: gid}); err != nil {
		return err
	}
	// A file that shrank while being read fails here rather than giving a
	// short entry; one that grew is cut at the size in its header.
	if w.buf == nil {
		w.buf = make([]byte, readBufSize)
	}
	n, err := io.CopyBuffer(w.tw, io.LimitReader(f, size), w.buf)
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("layer: %s: %w", host, err)
	}
	return nil
}

// header fills the fixed fields, applies perms and writes h. Names are
// relative ("nix/store/..."), directories end with a slash.
func (w *writer) header(h *tar.Header) error {
	abs := h.Name
	if p, ok := w.perms.lookup(abs); ok {
		if p.Mode != nil && h.Typeflag != tar.TypeSymlink {
			h.Mode = *p.Mode
		}
		if p.UID != nil {
			h.Uid = *p.UID
		}
		if p.GID != nil {
			h.Gid = *p.GID
		}
	}
	h.Name = strings.TrimPrefix(abs, "/")
	if h.Typeflag == tar.TypeDir {
		h.Name += "/"
	}
	h.ModTime = MTime
	h.Format = Format
	if err := w.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("layer: %s: %w", abs, err)
	}
	return nil
}

// LookupPerm returns the perm that applies to p (its own, else the nearest
// recursive one above it), as Write applies them.
func LookupPerm(perms []Perm, p string) (Perm, bool) {
	return newPermIndex(perms).lookup(path.Clean(p))
}

type permIndex struct {
	exact     map[string]Perm
	recursive map[string]Perm
	patterns  []Perm
}

func newPermIndex(perms []Perm) permIndex {
	ix := permIndex{exact: map[string]Perm{}, recursive: map[string]Perm{}}
	for _, p := range perms {
		if p.IsPattern() {
			ix.patterns = append(ix.patterns, p)
			continue
		}
		clean := path.Clean(p.Path)
		ix.exact[clean] = p
		if p.Recursive {
			ix.recursive[clean] = p
		}
	}
	return ix
}

// lookup finds the perm for p: its own, else the first pattern matching it,
// else the nearest recursive one above.
func (ix permIndex) lookup(p string) (Perm, bool) {
	if len(ix.exact) == 0 && len(ix.patterns) == 0 {
		return Perm{}, false
	}
	if perm, ok := ix.exact[p]; ok {
		return perm, true
	}
	for _, perm := range ix.patterns {
		if perm.matches(p) {
			if perm.Hits != nil {
				perm.Hits.Add(1)
			}
			return perm, true
		}
	}
	for dir := path.Dir(p); ; dir = path.Dir(dir) {
		if perm, ok := ix.recursive[dir]; ok {
			return perm, true
		}
		if dir == "/" {
			return Perm{}, false
		}
	}
}
