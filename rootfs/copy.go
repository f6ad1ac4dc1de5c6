package rootfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/nix-community/go-nix/pkg/nixhash"
	"golang.org/x/sys/unix"

	"github.com/ocitools/ocitools/derivation"
)

// The copy is bound by per-file work in the kernel (inode allocation, path
// lookups), so it does as little per file as it can: everything is opened
// relative to open directory descriptors (no path resolution), a regular file
// costs one fstatat, two openat, one copy_file_range (in-kernel copy, no
// user-space buffer) and two close, with no Go runtime poller bookkeeping.
//
// Walkers read directories in batches and create directories, symlinks and
// small files inline (handing a small file to another goroutine costs more
// than copying it); large files go to a bounded pool of copiers. A directory
// keeps its descriptors until every entry under it is done; when a whole store
// path is done it is re-hashed if verification is on. Every copied directory
// stays writable by its owner until the whole rootfs is built: the source
// modes (0555 in a store) are set by one last pass (finalModes), so that what
// an interrupted build leaves (even after SIGKILL) is removable with rm -rf. Memory and descriptors depend on the number
// of workers and directories in flight, not on the size of the closure.

const (
	readDirBatch = 256
	// inlineMax is the largest file a walker copies itself.
	inlineMax = 64 << 10
)

type fileJob struct {
	name   string
	perm   uint32
	size   int64
	parent *dirNode
}

// dirNode is a directory being copied: its source (read through src) and
// destination descriptors, and a count of what is still pending under it (one
// hold for its own walk plus one per entry in flight). At zero it takes its
// final mode, closes its descriptors and releases its parent; the root of a
// store path then calls done.
type dirNode struct {
	src     *os.File
	srcFd   int
	dstFd   int
	srcPath string
	dstPath string
	perm    uint32 // 0: keep the mode it was created with
	pending atomic.Int64
	parent  *dirNode
	done    func()
	c       *copier
}

func (n *dirNode) release() {
	if n.pending.Add(-1) != 0 {
		return
	}
	if n.perm != 0 {
		n.c.deferMode(n.dstPath, n.perm)
	}
	n.src.Close()
	unix.Close(n.dstFd)
	if n.parent != nil {
		n.parent.release()
	} else if n.done != nil {
		n.done()
	}
}

type copier struct {
	jobs    chan fileJob
	umask   uint32
	failed  atomic.Bool
	errOnce sync.Once
	err     error

	modesMu sync.Mutex
	modes   []dirMode
}

// dirMode is the final mode of a copied directory, set by finalModes.
type dirMode struct {
	path string
	perm uint32
}

// deferMode records a directory's final mode. Directories are released after
// everything under them, so the list is in post-order: children come before
// their parents, which finalModes relies on.
func (c *copier) deferMode(path string, perm uint32) {
	c.modesMu.Lock()
	c.modes = append(c.modes, dirMode{path, perm})
	c.modesMu.Unlock()
}

// finalModes gives every copied directory its source mode, children first (a
// parent without write or search permission must not stop its children's
// chmod). No symlink is followed: every entry was created by this copy.
func finalModes(modes []dirMode) error {
	for _, m := range modes {
		if err := unix.Fchmodat(unix.AT_FDCWD, m.path, m.perm, 0); err != nil {
			return fmt.Errorf("setting the mode of %s: %w", m.path, err)
		}
	}
	return nil
}

func (c *copier) fail(err error) {
	c.errOnce.Do(func() { c.err = err })
	c.failed.Store(true)
}

// buildUmask is the umask Build runs with, so that the rootfs does not depend
// on the caller's (Nix builds with 022; a user's shell may have 077).
const buildUmask = 0o022

// copyWorkers starts n goroutines copying the files of c.jobs; after a
// failure they only release what they are handed.
func (c *copier) copyWorkers(n int, wg *sync.WaitGroup) {
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range c.jobs {
				if !c.failed.Load() {
					if err := c.copyFile(j); err != nil {
						c.fail(err)
					}
				}
				j.parent.release()
			}
		}()
	}
}

// verifyJob is a copied store path to check against its NAR hash.
type verifyJob struct {
	pi  *derivation.PathInfo
	dst string
}

// verifyWorkers starts a goroutine per CPU checking the store paths of jobs
// as they are finished.
func (c *copier) verifyWorkers(jobs <-chan verifyJob, wg *sync.WaitGroup) {
	for range max(runtime.NumCPU(), 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range jobs {
				if c.failed.Load() {
					continue
				}
				if err := checkPath(v.dst, v.pi); err != nil {
					c.fail(fmt.Errorf("verifying the copy: %w", err))
				}
			}
		}()
	}
}

// copyClosure copies every closure path into store (dir/nix/store). It returns
// the final modes of the copied directories, which it leaves writable.
func copyClosure(store string, p Plan) ([]dirMode, error) {
	workers := p.Workers
	if workers <= 0 {
		workers = max(runtime.NumCPU(), 2)
	}
	c := &copier{jobs: make(chan fileJob, 4*workers), umask: buildUmask}

	var copiers, verifiers sync.WaitGroup
	c.copyWorkers(workers, &copiers)
	// Verification of a finished store path runs beside the copy.
	verifyJobs := make(chan verifyJob, len(p.Closure.Paths))
	if p.Verify {
		c.verifyWorkers(verifyJobs, &verifiers)
	}

	// Walkers take whole store paths; a few run at once so that the many small
	// paths of a closure do not wait behind one big one.
	paths := make(chan *derivation.PathInfo)
	var walkers, pathsDone sync.WaitGroup
	for i := 0; i < min(max(runtime.NumCPU(), 2), max(len(p.Closure.Paths), 1)); i++ {
		walkers.Add(1)
		go func() {
			defer walkers.Done()
			for pi := range paths {
				if c.failed.Load() {
					pathsDone.Done()
					continue
				}
				dst := filepath.Join(store, pi.StorePath.String())
				pi := pi
				done := func() {
					if p.Verify {
						verifyJobs <- verifyJob{pi, dst}
					}
					pathsDone.Done()
				}
				if err := c.copyTop(p.SourceRoot+pi.Path(), dst, done); err != nil {
					c.fail(fmt.Errorf("copying %s: %w", pi.Path(), err))
				}
			}
		}()
	}
	for _, pi := range p.Closure.Paths {
		pathsDone.Add(1)
		paths <- pi
	}
	close(paths)
	walkers.Wait()
	pathsDone.Wait()
	close(c.jobs)
	copiers.Wait()
	close(verifyJobs)
	verifiers.Wait()
	if c.err != nil {
		return nil, fmt.Errorf("rootfs: %w", c.err)
	}
	return c.modes, nil
}

// checkPath compares the NAR hash and size of dst with what Nix recorded.
func checkPath(dst string, pi *derivation.PathInfo) error {
	if problem := narMismatch(dst, pi); problem != "" {
		return fmt.Errorf("%s: %s", pi.Path(), problem)
	}
	return nil
}

func sameHash(a, b *nixhash.Hash) bool {
	return a.Algo() == b.Algo() && bytes.Equal(a.Digest(), b.Digest())
}

// filePerm is the mode bits a copy keeps (permissions and setuid/setgid/sticky).
func filePerm(st *unix.Stat_t) uint32 { return st.Mode & 0o7777 }

// copyTop copies one store path; done runs once everything under it is written
// (possibly later, from a copier).
func (c *copier) copyTop(src, dst string, done func()) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		done()
		return &fs.PathError{Op: "lstat", Path: src, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdir(dst, 0o755); err != nil {
			done()
			return &fs.PathError{Op: "mkdir", Path: dst, Err: err}
		}
		n, err := c.openNode(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, src, dst, filePerm(&st), nil)
		if err != nil {
			done()
			return err
		}
		n.done = done
		err = c.walk(n)
		n.release()
		return err
	case unix.S_IFLNK:
		defer done()
		return copySymlink(unix.AT_FDCWD, src, unix.AT_FDCWD, dst)
	case unix.S_IFREG:
		defer done()
		return c.copyFileAt(unix.AT_FDCWD, unix.AT_FDCWD, src, dst, filePerm(&st), st.Size)
	default:
		done()
		return fmt.Errorf("%s: unsupported file type (a store path holds only files, directories and symlinks)", src)
	}
}

// openNode opens a source directory and its (just created) copy.
func (c *copier) openNode(srcDir int, srcName string, dstDir int, dstName, srcPath, dstPath string, perm uint32, parent *dirNode) (*dirNode, error) {
	sfd, err := unix.Openat(srcDir, srcName, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: srcPath, Err: err}
	}
	dfd, err := unix.Openat(dstDir, dstName, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(sfd)
		return nil, fmt.Errorf("opening the copy of %s: %w", srcPath, err)
	}
	if perm == 0o755&^buildUmask { // what Mkdir already gave it
		perm = 0
	}
	n := &dirNode{src: os.NewFile(uintptr(sfd), srcPath), srcFd: sfd, dstFd: dfd, srcPath: srcPath, dstPath: dstPath, perm: perm, parent: parent, c: c}
	n.pending.Store(1)
	return n, nil
}

// walk copies the entries of a directory; the caller releases its hold on n.
func (c *copier) walk(n *dirNode) error {
	for {
		if c.failed.Load() {
			return nil
		}
		ents, err := n.src.ReadDir(readDirBatch)
		for _, e := range ents {
			name := e.Name()
			switch e.Type() {
			case fs.ModeDir:
				var st unix.Stat_t
				if err := unix.Fstatat(n.srcFd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return &fs.PathError{Op: "lstat", Path: filepath.Join(n.srcPath, name), Err: err}
				}
				if err := unix.Mkdirat(n.dstFd, name, 0o755); err != nil {
					return fmt.Errorf("creating the copy of %s: %w", filepath.Join(n.srcPath, name), err)
				}
				child, err := c.openNode(n.srcFd, name, n.dstFd, name, filepath.Join(n.srcPath, name), filepath.Join(n.dstPath, name), filePerm(&st), n)
				if err != nil {
					return err
				}
				n.pending.Add(1)
				err = c.walk(child)
				child.release()
				if err != nil {
					return err
				}
			case fs.ModeSymlink:
				if err := copySymlink(n.srcFd, name, n.dstFd, name); err != nil {
					return fmt.Errorf("%s: %w", filepath.Join(n.srcPath, name), err)
				}
			case 0:
				var st unix.Stat_t
				if err := unix.Fstatat(n.srcFd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return &fs.PathError{Op: "lstat", Path: filepath.Join(n.srcPath, name), Err: err}
				}
				j := fileJob{name: name, perm: filePerm(&st), size: st.Size, parent: n}
				if st.Size <= inlineMax {
					if err := c.copyFile(j); err != nil {
						return err
					}
					continue
				}
				n.pending.Add(1)
				c.jobs <- j
			default:
				return fmt.Errorf("%s: unsupported file type %s (a store path holds only files, directories and symlinks)", filepath.Join(n.srcPath, name), e.Type())
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// copySymlink recreates a symlink; its target is never followed.
func copySymlink(srcDir int, srcName string, dstDir int, dstName string) error {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(srcDir, srcName, buf)
		if err != nil {
			return fmt.Errorf("readlink: %w", err)
		}
		if n < len(buf) {
			if err := unix.Symlinkat(string(buf[:n]), dstDir, dstName); err != nil {
				return fmt.Errorf("symlink: %w", err)
			}
			return nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

func (c *copier) copyFile(j fileJob) error {
	err := c.copyFileAt(j.parent.srcFd, j.parent.dstFd, j.name, j.name, j.perm, j.size)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(j.parent.srcPath, j.name), err)
	}
	return nil
}

// copyFileAt copies a regular file. The destination is created with its final
// mode; a chmod follows only when the umask took bits away.
func (c *copier) copyFileAt(srcDir, dstDir int, srcName, dstName string, perm uint32, size int64) error {
	out, err := unix.Openat(dstDir, dstName, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm&0o777)
	if err != nil {
		return fmt.Errorf("creating the copy: %w", err)
	}
	defer unix.Close(out)
	if size > 0 {
		in, err := unix.Openat(srcDir, srcName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		err = copyData(in, out, size)
		unix.Close(in)
		if err != nil {
			return err
		}
	}
	if perm&c.umask != 0 || perm&^0o777 != 0 {
		if err := unix.Fchmod(out, perm); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	return nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// copyData copies size bytes with copy_file_range (in the kernel); where the
// kernel or file system cannot, with read and write.
func copyData(in, out int, size int64) error {
	remain := size
	for remain > 0 {
		n, err := unix.CopyFileRange(in, nil, out, nil, int(min(remain, 1<<30)), 0)
		if err != nil {
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
				return readWrite(in, out, remain)
			}
			return fmt.Errorf("copy_file_range: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("the file is %d bytes shorter than when listed (did it change during the copy?)", remain)
		}
		remain -= int64(n)
	}
	return nil
}

func readWrite(in, out int, remain int64) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for remain > 0 {
		n, err := unix.Read(in, buf[:min(int64(len(buf)), remain)])
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("the file is %d bytes shorter than when listed (did it change during the copy?)", remain)
		}
		for w := buf[:n]; len(w) > 0; {
			m, err := unix.Write(out, w)
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
			w = w[m:]
		}
		remain -= int64(n)
	}
	return nil
}
