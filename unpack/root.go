package unpack

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ocitools/ocitools/internal/resolve"
)

// root is a directory that every path of an image is resolved inside, with the
// semantics of a chroot: "/" and ".." stop at it, and a symlink's target,
// absolute or not, is followed inside it. No path an image names is ever
// resolved by the kernel relative to the host's "/": the kernel resolves it
// with openat2(RESOLVE_IN_ROOT) where that exists (Linux 5.6), else this
// package walks it one component at a time with O_NOFOLLOW. Unpacking owns
// the directory (a fresh temporary one), so nothing else changes the tree
// while it is walked.
type root struct {
	fd      int
	noOpen2 bool // openat2 is missing or refused (seccomp): walk by hand
}

// maxSymlinkHops is the entry-point resolver's limit (the kernel's): this
// walk opens what it resolves, by descriptor, for writing safely, so it
// stays its own; only the limit is shared.
const maxSymlinkHops = resolve.MaxHops

// noOpenat2 makes every root use the walk (tests run both ways).
var noOpenat2 = false

func openRoot(dir string) (*root, error) {
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	return &root{fd: fd, noOpen2: noOpenat2}, nil
}

func (r *root) close() {
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

// components splits a clean relative path ("" and "." are the root).
func components(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// openDir opens the directory p (relative to the root) for reading, following
// symlinks inside the root. With create, missing directories are made (mode
// 0700 until the deferred metadata pass gives them theirs) and reported
// through made, with their path relative to the root as the walk saw it.
func (r *root) openDir(p string, create bool, made func(string)) (int, error) {
	if !r.noOpen2 {
		how := &unix.OpenHow{
			Flags:   unix.O_DIRECTORY | unix.O_RDONLY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		}
		name := p
		if name == "" {
			name = "."
		}
		fd, err := unix.Openat2(r.fd, name, how)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
			r.noOpen2 = true // a seccomp filter may answer EPERM
		case errors.Is(err, unix.EAGAIN):
			// The kernel saw a concurrent rename; the walk below is exact.
		case !errors.Is(err, unix.ENOENT) || !create:
			return -1, err
		}
	}
	return r.walk(p, create, made)
}

// walk resolves p by hand: one component at a time, no symlink followed by
// the kernel, ".." never above the root.
func (r *root) walk(p string, create bool, made func(string)) (int, error) {
	todo := components(p)
	start, err := unix.Dup(r.fd)
	if err != nil {
		return -1, err
	}
	stack := []int{start} // open directories from the root down
	names := []string{}   // their names, for made()
	closeAll := func() {
		for _, fd := range stack {
			unix.Close(fd)
		}
	}
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		cur := stack[len(stack)-1]
		if c == ".." {
			if len(stack) > 1 {
				unix.Close(cur)
				stack = stack[:len(stack)-1]
				names = names[:len(names)-1]
			}
			continue
		}
		var st unix.Stat_t
		err := unix.Fstatat(cur, c, &st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(cur, c, 0o700); err == nil || errors.Is(err, unix.EEXIST) {
				if made != nil && err == nil {
					made(strings.Join(append(append([]string{}, names...), c), "/"))
				}
				err = unix.Fstatat(cur, c, &st, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
		if err != nil {
			closeAll()
			return -1, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			hops++
			if hops > maxSymlinkHops {
				closeAll()
				return -1, unix.ELOOP
			}
			target, err := readlinkat(cur, c)
			if err != nil {
				closeAll()
				return -1, err
			}
			if strings.HasPrefix(target, "/") {
				for _, fd := range stack[1:] {
					unix.Close(fd)
				}
				stack, names = stack[:1], names[:0]
			}
			todo = append(components(target), todo...)
		case unix.S_IFDIR:
			fd, err := unix.Openat(cur, c, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				closeAll()
				return -1, err
			}
			stack = append(stack, fd)
			names = append(names, c)
		default:
			closeAll()
			return -1, unix.ENOTDIR
		}
	}
	last := stack[len(stack)-1]
	for _, fd := range stack[:len(stack)-1] {
		unix.Close(fd)
	}
	return last, nil
}

func readlinkat(dir int, name string) (string, error) {
	for size := 256; size <= 1<<16; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
	return "", unix.ENAMETOOLONG
}

// readFile reads the regular file p inside the root, at most limit bytes (an
// error beyond). A missing file gives an error wrapping os.ErrNotExist.
func (r *root) readFile(p string, limit int64) ([]byte, error) {
	dir, base := splitParent(p)
	dfd, err := r.openDir(dir, false, nil)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	// The last component may be a symlink too: resolve it inside the root.
	for hops := 0; ; hops++ {
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			break
		}
		if hops >= maxSymlinkHops {
			return nil, unix.ELOOP
		}
		target, err := readlinkat(dfd, base)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(target, "/") {
			target = dir + "/" + target
		}
		dir, base = splitParent(cleanInRoot(target))
		unix.Close(dfd)
		if dfd, err = r.openDir(dir, false, nil); err != nil {
			return nil, err
		}
	}
	fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, limit)
	}
	return data, nil
}

// cleanInRoot cleans an absolute or relative path as seen from the root: ".."
// never climbs above it. The result is relative ("" for the root).
func cleanInRoot(p string) string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, c)
		}
	}
	return strings.Join(out, "/")
}

// splitParent splits a clean relative path into its directory ("" for the
// root) and last component.
func splitParent(p string) (string, string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// removeAt removes name from the directory dir, recursively, without following
// any symlink. Directories the caller cannot write (an image's 0555 ones, when
// unpacking as a user) are made writable first.
func removeAt(dir int, name string) error {
	err := unix.Unlinkat(dir, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, oerr := unix.Openat(dir, name, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if oerr != nil {
		return err
	}
	_ = unix.Fchmod(fd, 0o700)
	cerr := removeChildren(fd, nil)
	unix.Close(fd)
	if cerr != nil {
		return cerr
	}
	return unix.Unlinkat(dir, name, unix.AT_REMOVEDIR)
}

// removeChildren empties the directory fd, keeping the names keep says to.
func removeChildren(fd int, keep func(name string) bool) error {
	names, err := readDirNames(fd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if keep != nil && keep(n) {
			continue
		}
		if err := removeAt(fd, n); err != nil {
			return err
		}
	}
	return nil
}

func readDirNames(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

// RemoveTree removes a directory tree the caller owns, including read-only
// directories in it (an image's 0555 ones), without following symlinks.
func RemoveTree(path string) error { return removeTree(path) }

func removeTree(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	fd, err := unix.Open(path, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return os.RemoveAll(path)
	}
	_ = unix.Fchmod(fd, 0o700)
	err = removeChildren(fd, nil)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return os.Remove(path)
}
