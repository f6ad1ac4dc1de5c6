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
	"syscall"

	"github.com/nix-community/go-nix/pkg/nixhash"
	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/nar"
)

// The copy runs as a pipeline: walkers read directories (streaming, in batches)
// and create directories and symlinks inline; regular files go to a bounded pool
// of copiers (io.Copy between *os.File, which is copy_file_range on Linux).
// A directory keeps write permission until every entry under it is done, then
// gets its source mode; when a whole store path is done it is re-hashed if
// verification is on. Memory depends on the number of workers and directories
// in flight, not on the size of the closure.

const readDirBatch = 256

type fileJob struct {
	src, dst string
	perm     fs.FileMode
	size     int64
	parent   *dirNode
}

// dirNode counts what is still pending under a directory: one hold for its own
// walk plus one per entry in flight. At zero it takes its final mode and
// releases its parent; the root of a store path then calls done.
type dirNode struct {
	dst     string
	perm    fs.FileMode // 0 means leave as created
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
		if err := os.Chmod(n.dst, n.perm); err != nil {
			n.c.fail(fmt.Errorf("rootfs: %w", err))
		}
	}
	if n.parent != nil {
		n.parent.release()
	} else if n.done != nil {
		n.done()
	}
}

type copier struct {
	jobs    chan fileJob
	umask   fs.FileMode
	failed  atomic.Bool
	errOnce sync.Once
	err     error
}

func (c *copier) fail(err error) {
	c.errOnce.Do(func() { c.err = err })
	c.failed.Store(true)
}

// umask is read once, before any goroutine starts (reading it means setting it).
var umask = func() fs.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return fs.FileMode(m)
}()

// copyClosure copies every closure path into store (dir/nix/store).
func copyClosure(store string, p Plan) error {
	workers := p.Workers
	if workers <= 0 {
		// Copies are bound by inode allocation and I/O, not CPU: a few more
		// workers than cores keep the disk queue full.
		workers = min(max(2*runtime.NumCPU(), 4), 16)
	}
	c := &copier{jobs: make(chan fileJob, 4*workers), umask: umask}

	var copiers sync.WaitGroup
	for i := 0; i < workers; i++ {
		copiers.Add(1)
		go func() {
			defer copiers.Done()
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

	// Verification of a finished store path runs beside the copy.
	type verifyJob struct {
		pi  *derivation.PathInfo
		dst string
	}
	verifyJobs := make(chan verifyJob, len(p.Closure.Paths))
	var verifiers sync.WaitGroup
	if p.Verify {
		for i := 0; i < max(runtime.NumCPU(), 1); i++ {
			verifiers.Add(1)
			go func() {
				defer verifiers.Done()
				for v := range verifyJobs {
					if c.failed.Load() {
						continue
					}
					if err := checkPath(v.dst, v.pi); err != nil {
						c.fail(fmt.Errorf("rootfs: verifying the copy: %w", err))
					}
				}
			}()
		}
	}

	// Walkers take whole store paths; a few run at once so that the many small
	// paths of a closure do not wait behind one big one.
	paths := make(chan *derivation.PathInfo)
	var walkers, pathsDone sync.WaitGroup
	for i := 0; i < min(4, max(len(p.Closure.Paths), 1)); i++ {
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
					c.fail(fmt.Errorf("rootfs: copying %s: %w", pi.Path(), err))
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
	return c.err
}

// checkPath compares the NAR hash and size of dst with what Nix recorded.
func checkPath(dst string, pi *derivation.PathInfo) error {
	h, size, err := nar.HashPath(dst)
	if err != nil {
		return err
	}
	if !sameHash(h, pi.NarHash) || (pi.NarSize != 0 && size != pi.NarSize) {
		return fmt.Errorf("%s: NAR hash %s (%d bytes), expected %s (%d bytes)",
			pi.Path(), nar.Format(h), size, nar.Format(pi.NarHash), pi.NarSize)
	}
	return nil
}

func sameHash(a, b *nixhash.Hash) bool {
	return a.Algo() == b.Algo() && bytes.Equal(a.Digest(), b.Digest())
}

// copyTop copies one store path; done runs once everything under it is written
// (possibly later, from a copier).
func (c *copier) copyTop(src, dst string, done func()) error {
	fi, err := os.Lstat(src)
	if err != nil {
		done()
		return err
	}
	switch {
	case fi.IsDir():
		if err := os.Mkdir(dst, 0o755); err != nil {
			done()
			return err
		}
		n := &dirNode{dst: dst, perm: dirPerm(fi.Mode()), done: done, c: c}
		n.pending.Store(1)
		err := c.walk(src, dst, n)
		n.release()
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		defer done()
		return copySymlink(src, dst)
	case fi.Mode().IsRegular():
		defer done()
		return c.copyFile(fileJob{src: src, dst: dst, perm: fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), size: fi.Size()})
	default:
		done()
		return fmt.Errorf("%s: unsupported file type %s", src, fi.Mode().Type())
	}
}

// dirPerm is the mode a copied directory ends with; 0 when the one it was
// created with (0755) is already right.
func dirPerm(m fs.FileMode) fs.FileMode {
	p := m.Perm() | m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if p == 0o755 {
		return 0
	}
	return p
}

// walk copies the entries of the directory src into dst, which exists.
func (c *copier) walk(src, dst string, node *dirNode) error {
	d, err := os.Open(src)
	if err != nil {
		return err
	}
	defer d.Close()
	for {
		if c.failed.Load() {
			return nil
		}
		ents, err := d.ReadDir(readDirBatch)
		for _, e := range ents {
			s, t := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
			switch e.Type() {
			case fs.ModeDir:
				fi, err := e.Info()
				if err != nil {
					return err
				}
				if err := os.Mkdir(t, 0o755); err != nil {
					return err
				}
				child := &dirNode{dst: t, perm: dirPerm(fi.Mode()), parent: node, c: c}
				child.pending.Store(1)
				node.pending.Add(1)
				err = c.walk(s, t, child)
				child.release()
				if err != nil {
					return err
				}
			case fs.ModeSymlink:
				if err := copySymlink(s, t); err != nil {
					return err
				}
			case 0:
				fi, err := e.Info()
				if err != nil {
					return err
				}
				node.pending.Add(1)
				c.jobs <- fileJob{src: s, dst: t, perm: fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), size: fi.Size(), parent: node}
			default:
				return fmt.Errorf("%s: unsupported file type %s (a store path holds only files, directories and symlinks)", s, e.Type())
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
func copySymlink(src, dst string) error {
	target, err := os.Readlink(src)
	if err != nil {
		return err
	}
	return os.Symlink(target, dst)
}

// copyFile copies a regular file. The destination is created with its final
// mode; a chmod follows only when the umask took bits away.
func (c *copier) copyFile(j fileJob) error {
	out, err := os.OpenFile(j.dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, j.perm)
	if err != nil {
		return err
	}
	if j.size > 0 {
		in, err := os.Open(j.src)
		if err != nil {
			out.Close()
			return err
		}
		// *os.File to *os.File: copy_file_range in the kernel.
		n, err := io.Copy(out, in)
		in.Close()
		if err != nil {
			out.Close()
			return fmt.Errorf("copying %s: %w", j.src, err)
		}
		if n != j.size {
			out.Close()
			return fmt.Errorf("copying %s: copied %d bytes, expected %d (did it change during the copy?)", j.src, n, j.size)
		}
	}
	if j.perm&c.umask != 0 || j.perm&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		if err := out.Chmod(j.perm); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}
