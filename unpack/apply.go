package unpack

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Limits bound what an image can make unpacking do: it is untrusted input.
type Limits struct {
	// MaxBytes bounds the uncompressed size of all layers together, and
	// separately the bytes written to files (a sparse entry can expand).
	MaxBytes int64
	// MaxEntries bounds the number of tar entries of all layers together.
	MaxEntries int64
}

// DefaultLimits are generous for real images (a large distribution image is
// a few GiB and a few hundred thousand files) and stop a decompression bomb
// long before it fills a usual disk.
var DefaultLimits = Limits{MaxBytes: 16 << 30, MaxEntries: 1 << 20}

// Skipped is one kind of entry left out, with a few examples.
type Skipped struct {
	What     string   // "device node", ...
	Why      string   // why it is skipped
	Count    int      // how many
	Examples []string // the first few paths
}

const maxExamples = 5

// maxSkipKinds bounds the kinds of skipped things remembered (each skipped
// extended attribute name is a kind: an image must not grow the list without
// bound); the rest are counted together.
const maxSkipKinds = 32

// maxMetaBytes bounds what unpacking keeps in memory about the paths it made
// (for whiteouts and the directories' deferred metadata): far above real
// images (200k files take about 20 MB), far below what 1 Mi entries of 4 KiB
// names would take.
const maxMetaBytes = 256 << 20

// applier applies layers, in order, to a root directory.
type applier struct {
	root       *root
	privileged bool // root: keep ownership and the capability xattr
	limits     Limits

	streamBytes, written, entries int64
	metaBytes                     int64 // see maxMetaBytes
	// space is what the file system had free (less a reserve) when the
	// unpack started; -1 means unknown.
	space freeSpace

	// dirs holds each directory's metadata, applied after the last layer:
	// until then every directory stays writable by its owner, so that an
	// unprivileged unpack can fill an image's 0555 directories, and creating
	// entries does not disturb the directories' mtimes.
	dirs map[string]*meta
	// added and addedAncestors are the paths the current layer made, and their
	// ancestors: a whiteout hides only what lower layers have.
	added, addedAncestors map[string]bool

	skipped map[string]*Skipped
	order   []string
	where   string          // the layer being applied, for messages
	ctx     context.Context // stops a long file write too
}

// ctxReader stops reading when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type meta struct {
	mode       uint32
	uid, gid   int
	mtime      time.Time
	atime      time.Time
	xattrs     map[string]string
	implicitly bool // made for an entry below it, not named by the layer
}

func newApplier(r *root, privileged bool, limits Limits) *applier {
	if limits.MaxBytes <= 0 {
		limits.MaxBytes = DefaultLimits.MaxBytes
	}
	if limits.MaxEntries <= 0 {
		limits.MaxEntries = DefaultLimits.MaxEntries
	}
	return &applier{
		root: r, privileged: privileged, limits: limits, space: freeSpace{bytes: -1, inodes: -1},
		dirs: map[string]*meta{}, skipped: map[string]*Skipped{},
	}
}

func (a *applier) skip(what, why, p string) {
	s := a.skipped[what]
	if s == nil && len(a.skipped) >= maxSkipKinds {
		what, why = "other kinds of entries and attributes", "as above"
		s = a.skipped[what]
	}
	if s == nil {
		s = &Skipped{What: what, Why: why}
		a.skipped[what] = s
		a.order = append(a.order, what)
	}
	s.Count++
	if len(s.Examples) < maxExamples {
		s.Examples = append(s.Examples, "/"+p)
	}
}

// Skips lists what was left out, in the order first met.
func (a *applier) skips() []Skipped {
	out := make([]Skipped, 0, len(a.order))
	for _, w := range a.order {
		out = append(out, *a.skipped[w])
	}
	return out
}

// countingReader counts the uncompressed bytes of all layers against the limit.
type countingReader struct {
	r io.Reader
	a *applier
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.a.streamBytes += int64(n)
	if c.a.streamBytes > c.a.limits.MaxBytes {
		return n, fmt.Errorf("the layers hold more than %d bytes uncompressed (the limit; a decompression bomb?)", c.a.limits.MaxBytes)
	}
	return n, err
}

// applyLayer reads one uncompressed layer (a tar stream) and applies it. The
// stream is read to its end, so that a caller hashing it sees all of it.
func (a *applier) applyLayer(ctx context.Context, r io.Reader, where string) error {
	a.where, a.ctx = where, ctx
	a.added, a.addedAncestors = map[string]bool{}, map[string]bool{}
	cr := &countingReader{r: r, a: a}
	tr := tar.NewReader(cr)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: reading the tar stream: %w", where, err)
		}
		a.entries++
		if a.space.inodes >= 0 && a.entries > a.space.inodes {
			return fmt.Errorf("%s: the layers hold more entries than the %d inodes free on the file system (keeping %d free)", where, a.space.inodes, a.space.inodeReserve)
		}
		if a.entries > a.limits.MaxEntries {
			return fmt.Errorf("%s: the layers hold more than %d entries (the limit)", where, a.limits.MaxEntries)
		}
		if err := a.entry(hdr, tr); err != nil {
			return fmt.Errorf("%s: entry %q: %w", where, hdr.Name, err)
		}
		if a.metaBytes > maxMetaBytes {
			return fmt.Errorf("%s: the layers' paths and directory attributes take more than %d bytes to track (the limit)", where, maxMetaBytes)
		}
	}
	// What follows the end-of-archive marker is part of the layer's digest.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return fmt.Errorf("%s: reading the tar stream: %w", where, err)
	}
	return nil
}

func (a *applier) markAdded(p string) {
	if !a.added[p] {
		a.added[p] = true
		a.metaBytes += int64(len(p))
	}
	for d, _ := splitParent(p); d != ""; d, _ = splitParent(d) {
		if a.addedAncestors[d] {
			break
		}
		a.addedAncestors[d] = true
		a.metaBytes += int64(len(d))
	}
}

// setDir records a directory's metadata for the end.
func (a *applier) setDir(p string, m *meta) {
	if a.dirs[p] == nil {
		a.metaBytes += int64(len(p)) + 64
	}
	for k, v := range m.xattrs {
		a.metaBytes += int64(len(k) + len(v))
	}
	a.dirs[p] = m
}

// parent opens the directory that holds p, creating missing directories.
// clearedParent opens the directory that will hold p and removes whatever
// stands at its name (a later layer's entry replaces an earlier one's): what
// every creating entry does first.
func (a *applier) clearedParent(p string) (int, string, error) {
	dfd, base, err := a.parent(p)
	if err != nil {
		return -1, "", err
	}
	if err := replace(dfd, base); err != nil {
		unix.Close(dfd)
		return -1, "", err
	}
	return dfd, base, nil
}

func (a *applier) parent(p string) (int, string, error) {
	dir, base := splitParent(p)
	fd, err := a.root.openDir(dir, true, func(made string) {
		a.setDir(made, &meta{mode: 0o755, implicitly: true})
		a.markAdded(made)
	})
	if err != nil {
		return -1, "", fmt.Errorf("opening its directory /%s: %w", dir, err)
	}
	return fd, base, nil
}

func (a *applier) entry(hdr *tar.Header, data io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // metadata for the archive, not an entry
	}
	p, err := entryPath(hdr.Name)
	if err != nil {
		return err
	}
	kind, wdir, wname, err := classifyWhiteout(p)
	if err != nil {
		return err
	}
	switch kind {
	case whiteoutFile:
		return a.whiteout(wdir, wname)
	case whiteoutOpaque:
		return a.opaque(wdir)
	case whiteoutOther:
		a.skip("aufs metadata entry", "only .wh.NAME and .wh..wh..opq have a meaning in OCI layers", p)
		return nil
	}
	if p == "" {
		return nil // the root itself: it stays as unpacking made it
	}
	if hdr.Uid < 0 || hdr.Gid < 0 || hdr.Uid > maxID || hdr.Gid > maxID {
		return fmt.Errorf("owner %d:%d is out of range", hdr.Uid, hdr.Gid)
	}
	switch hdr.Typeflag {
	case tar.TypeReg: // archive/tar reports old tars' TypeRegA as TypeReg
		return a.regular(p, hdr, data)
	case tar.TypeDir:
		return a.dir(p, hdr)
	case tar.TypeSymlink:
		return a.symlink(p, hdr)
	case tar.TypeLink:
		return a.hardlink(p, hdr)
	case tar.TypeFifo:
		return a.fifo(p, hdr)
	case tar.TypeChar, tar.TypeBlock:
		a.skip("device node", "a device node in a rootfs could give access to host devices; the runtime makes /dev", p)
		return nil
	default:
		a.skip(fmt.Sprintf("entry of tar type %q", hdr.Typeflag), "not a file, directory, link or FIFO", p)
		return nil
	}
}

const maxID = 1<<32 - 2

// whiteout removes dir/name as the layers below made it. What the current
// layer made under that name stays (the spec: a whiteout only applies to
// lower layers), so entries in either order give the same tree.
func (a *applier) whiteout(dir, name string) error {
	p := joinPath(dir, name)
	if a.added[p] {
		return nil
	}
	fd, err := a.root.openDir(dir, false, nil)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil // nothing below to hide
	}
	if err != nil {
		return fmt.Errorf("opening /%s: %w", dir, err)
	}
	defer unix.Close(fd)
	if a.addedAncestors[p] {
		cfd, err := unix.Openat(fd, name, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			defer unix.Close(cfd)
			return a.clearLower(cfd, p)
		}
		if !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("opening /%s: %w", p, err)
		}
		// A symlink the layer wrote through: the entries went where it
		// points; the link itself is from below and goes.
	}
	if err := removeAt(fd, name); err != nil {
		return fmt.Errorf("removing /%s: %w", p, err)
	}
	return nil
}

// opaque empties dir of what the layers below put there.
func (a *applier) opaque(dir string) error {
	fd, err := a.root.openDir(dir, false, nil)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening /%s: %w", dir, err)
	}
	defer unix.Close(fd)
	return a.clearLower(fd, dir)
}

// clearLower removes the entries of the directory fd (at path dir) that the
// current layer did not make, descending into those that hold its entries.
func (a *applier) clearLower(fd int, dir string) error {
	names, err := readDirNames(fd)
	if err != nil {
		return fmt.Errorf("reading /%s: %w", dir, err)
	}
	for _, n := range names {
		p := joinPath(dir, n)
		switch {
		case a.added[p]:
		case a.addedAncestors[p]:
			cfd, err := unix.Openat(fd, n, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("opening /%s: %w", p, err)
			}
			err = a.clearLower(cfd, p)
			unix.Close(cfd)
			if err != nil {
				return err
			}
		default:
			if err := removeAt(fd, n); err != nil {
				return fmt.Errorf("removing /%s: %w", p, err)
			}
		}
	}
	return nil
}

// replace clears the way for a new non-directory entry at dir/name.
func replace(dir int, name string) error {
	if err := removeAt(dir, name); err != nil {
		return fmt.Errorf("replacing what is there: %w", err)
	}
	return nil
}

func (a *applier) regular(p string, hdr *tar.Header, data io.Reader) error {
	if a.space.bytes >= 0 && hdr.Size > a.space.bytes-a.written {
		return fmt.Errorf("its %d bytes would take the files written past the %d bytes free on the file system (keeping %d free)", hdr.Size, a.space.bytes, a.space.byteReserve)
	}
	if hdr.Size < 0 || hdr.Size > a.limits.MaxBytes-a.written {
		return fmt.Errorf("its %d bytes would take the files written past %d bytes (the limit; a decompression bomb?)", hdr.Size, a.limits.MaxBytes)
	}
	dfd, base, err := a.clearedParent(p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating it: %w", err)
	}
	a.markAdded(p)
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	if a.ctx != nil {
		data = ctxReader{a.ctx, data}
	}
	n, err := io.Copy(f, io.LimitReader(data, hdr.Size))
	a.written += n
	if err != nil {
		return fmt.Errorf("writing it: %w", err)
	}
	if n != hdr.Size {
		return fmt.Errorf("the layer ends after %d of its %d bytes", n, hdr.Size)
	}
	if a.privileged {
		if err := a.owner(unix.Fchown(fd, hdr.Uid, hdr.Gid), p); err != nil {
			return err
		}
	}
	// After chown, which clears the set-id bits.
	if err := unix.Fchmod(fd, uint32(hdr.Mode)&0o7777); err != nil {
		return fmt.Errorf("setting its mode: %w", err)
	}
	a.setXattrs(fd, p, hdr)
	return a.times(dfd, base, hdr)
}

func (a *applier) dir(p string, hdr *tar.Header) error {
	dfd, base, err := a.parent(p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	err = unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		// Kept, with what the lower layers put in it.
	case err == nil || errors.Is(err, unix.ENOENT):
		if err == nil {
			if err := replace(dfd, base); err != nil {
				return err
			}
		}
		if err := unix.Mkdirat(dfd, base, 0o700); err != nil {
			return fmt.Errorf("creating it: %w", err)
		}
	default:
		return err
	}
	a.markAdded(p)
	m := &meta{mode: uint32(hdr.Mode) & 0o7777, uid: hdr.Uid, gid: hdr.Gid, mtime: hdr.ModTime, atime: hdr.AccessTime}
	if x := a.keptXattrs(p, hdr); len(x) > 0 {
		m.xattrs = x
	}
	a.setDir(p, m)
	return nil
}

func (a *applier) symlink(p string, hdr *tar.Header) error {
	if hdr.Linkname == "" || strings.ContainsRune(hdr.Linkname, 0) {
		return errors.New("is a symlink with an empty target or one holding a NUL byte")
	}
	dfd, base, err := a.clearedParent(p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	// The target is stored as it is: it is resolved inside the rootfs by
	// this package, by the runtime and by the container, never on the host.
	if err := unix.Symlinkat(hdr.Linkname, dfd, base); err != nil {
		return fmt.Errorf("creating it: %w", err)
	}
	a.markAdded(p)
	if a.privileged {
		if err := a.owner(unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW), p); err != nil {
			return err
		}
	}
	return a.times(dfd, base, hdr)
}

func (a *applier) hardlink(p string, hdr *tar.Header) error {
	target, err := entryPath(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("is a hard link whose target %q %w", hdr.Linkname, err)
	}
	if target == p {
		return nil // a link to itself: nothing to do
	}
	tdir, tbase := splitParent(target)
	if target == "" {
		return errors.New("is a hard link to the root directory")
	}
	tfd, err := a.root.openDir(tdir, false, nil)
	if err != nil {
		return fmt.Errorf("is a hard link to /%s, which is not in the layers so far: %w", target, err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("is a hard link to /%s, which is not in the layers so far: %w", target, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("is a hard link to /%s, a directory", target)
	}
	dfd, base, err := a.clearedParent(p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	// Flags 0: the link is to tbase itself, even when it is a symlink.
	if err := unix.Linkat(tfd, tbase, dfd, base, 0); err != nil {
		return fmt.Errorf("linking it to /%s: %w", target, err)
	}
	a.markAdded(p)
	return nil
}

func (a *applier) fifo(p string, hdr *tar.Header) error {
	dfd, base, err := a.clearedParent(p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Mknodat(dfd, base, unix.S_IFIFO|0o600, 0); err != nil {
		return fmt.Errorf("creating it: %w", err)
	}
	a.markAdded(p)
	if a.privileged {
		if err := a.owner(unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW), p); err != nil {
			return err
		}
	}
	// No symlink can be at base: this call just made a FIFO there.
	if err := unix.Fchmodat(dfd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
		return fmt.Errorf("setting its mode: %w", err)
	}
	return a.times(dfd, base, hdr)
}

// owner handles the result of a chown. Root in a user namespace (a
// container, a CI sandbox) cannot give a file an id the namespace does not
// map: the file stays ours, and the entry is listed.
func (a *applier) owner(err error, p string) error {
	if errors.Is(err, unix.EINVAL) {
		a.skip("owner (an id this user namespace does not map)", "the file keeps this process's owner", p)
		return nil
	}
	if err != nil {
		return fmt.Errorf("setting its owner: %w", err)
	}
	return nil
}

func (a *applier) times(dfd int, base string, hdr *tar.Header) error {
	ts := timespecs(hdr.AccessTime, hdr.ModTime)
	if err := unix.UtimesNanoAt(dfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting its times: %w", err)
	}
	return nil
}

func timespecs(atime, mtime time.Time) []unix.Timespec {
	if atime.IsZero() {
		atime = mtime
	}
	return []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
}

const paxXattr = "SCHILY.xattr."

// keptXattrs are the extended attributes of an entry that unpacking keeps:
// user.* always, security.capability (file capabilities) as root. Others
// (trusted.*, which includes overlayfs's own, security.selinux, ACLs) would
// carry meaning for the host rather than the image: skipped and reported.
func (a *applier) keptXattrs(p string, hdr *tar.Header) map[string]string {
	var out map[string]string
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok {
			continue
		}
		if strings.HasPrefix(name, "user.") || (a.privileged && name == "security.capability") {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = v
			continue
		}
		a.skip("extended attribute "+name, "it is not user.* (or security.capability, kept as root)", p)
	}
	return out
}

func (a *applier) setXattrs(fd int, p string, hdr *tar.Header) {
	a.applyXattrs(fd, p, a.keptXattrs(p, hdr))
}

func (a *applier) applyXattrs(fd int, p string, x map[string]string) {
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := unix.Fsetxattr(fd, k, []byte(x[k]), 0); err != nil {
			a.skip("extended attribute "+k+" (refused by the file system)", err.Error(), p)
		}
	}
}

// finish gives every directory its metadata, deepest first (a read-only
// parent must not stop its children; setting a child's times touches nothing
// above it).
func (a *applier) finish(ctx context.Context) error {
	paths := make([]string, 0, len(a.dirs))
	for p := range a.dirs {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool {
		di, dj := strings.Count(paths[i], "/"), strings.Count(paths[j], "/")
		if di != dj {
			return di > dj
		}
		return paths[i] < paths[j]
	})
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := a.dirs[p]
		fd, err := a.root.openDir(p, false, nil)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			continue // a later layer removed or replaced it
		}
		if err != nil {
			return fmt.Errorf("directory /%s: %w", p, err)
		}
		err = a.applyDirMeta(fd, p, m)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("directory /%s: %w", p, err)
		}
	}
	return nil
}

func (a *applier) applyDirMeta(fd int, p string, m *meta) error {
	if a.privileged && !m.implicitly {
		if err := a.owner(unix.Fchown(fd, m.uid, m.gid), p); err != nil {
			return err
		}
	}
	a.applyXattrs(fd, p, m.xattrs)
	if err := unix.Fchmod(fd, m.mode); err != nil {
		return fmt.Errorf("setting its mode: %w", err)
	}
	if m.implicitly {
		return nil
	}
	ts := timespecs(m.atime, m.mtime)
	tv := []unix.Timeval{unix.NsecToTimeval(ts[0].Nano()), unix.NsecToTimeval(ts[1].Nano())}
	if err := unix.Futimes(fd, tv); err != nil {
		return fmt.Errorf("setting its times: %w", err)
	}
	return nil
}

// freeSpace is what unpacking may use of a file system: what was free when
// it started, less a reserve so that the machine does not run out of space
// (an image cannot fill a disk even when its limits are larger).
type freeSpace struct {
	bytes, inodes             int64
	byteReserve, inodeReserve int64
}

// spaceOf measures the file system holding dir. The reserve is 5 % of it,
// at most 1 GiB and 10000 inodes.
func spaceOf(dir string) freeSpace {
	unknown := freeSpace{bytes: -1, inodes: -1}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Bsize <= 0 {
		return unknown
	}
	bs := uint64(st.Bsize)
	fs := freeSpace{
		byteReserve:  int64(min(st.Blocks*bs/20, 1<<30)),
		inodeReserve: int64(min(st.Files/20, 10000)),
	}
	fs.bytes = max(int64(st.Bavail*bs)-fs.byteReserve, 0)
	fs.inodes = max(int64(st.Ffree)-fs.inodeReserve, 0)
	if st.Files == 0 {
		fs.inodes = -1 // btrfs reports no inode counts: no bound then
	}
	return fs
}
