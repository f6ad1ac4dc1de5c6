// Package partial is the one protocol for an output assembled beside its
// final place and renamed there when complete (build, pull, and the
// temporary images of unpack and run): the partial output
// PARENT/.NAME<infix>XXXX has a lock file PARENT/.NAME<infix>XXXX.lock that
// its writer holds locked (flock) while it lives. A writer stopped by a
// signal removes both; one killed with SIGKILL cannot, and the next writer
// in PARENT reclaims what it left: a lock nobody holds.
package partial

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

const lockSuffix = ".lock"

// Output is a partial output and its held lock.
type Output struct {
	// Path is the partial output: not created, the caller makes it (a
	// directory, a file) and renames it into place when it is complete.
	Path string
	lock *os.File
}

// Create reclaims what killed writers left in out's parent directory (any
// name, this infix; what names the writer, "build"), then takes a new
// partial output for out. remove
// removes a partial output (a tree whose modes os.RemoveAll cannot undo
// needs its own); log, when not nil, hears what was reclaimed.
func Create(out, infix, what string, remove func(string) error, log io.Writer) (*Output, error) {
	parent := filepath.Dir(filepath.Clean(out))
	Reclaim(parent, infix, what, remove, log)
	for try := 0; try < 3; try++ {
		lock, err := os.CreateTemp(parent, "."+filepath.Base(out)+infix+"*"+lockSuffix)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			lock.Close()
			os.Remove(lock.Name())
			return nil, fmt.Errorf("locking %s: %w", lock.Name(), err)
		}
		// Another writer's Reclaim may have taken the lock between create
		// and flock and removed the file: then it is not ours, start over.
		var st syscall.Stat_t
		if syscall.Fstat(int(lock.Fd()), &st) == nil && st.Nlink > 0 {
			return &Output{Path: strings.TrimSuffix(lock.Name(), lockSuffix), lock: lock}, nil
		}
		lock.Close()
	}
	return nil, fmt.Errorf("taking a partial output beside %s: the lock file kept disappearing", out)
}

// Release drops the lock and removes its file; the partial output itself
// must already be renamed or removed.
func (o *Output) Release() {
	if o == nil || o.lock == nil {
		return
	}
	os.Remove(o.lock.Name())
	o.lock.Close()
	o.lock = nil
}

// Reclaim removes the partial outputs in dir (this infix) whose lock no
// process holds, and their lock files. It returns what it removed.
func Reclaim(dir, infix, what string, remove func(string) error, log io.Writer) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var gone []string
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, ".") || !strings.Contains(name, infix) || !strings.HasSuffix(name, lockSuffix) {
			continue
		}
		lockPath := filepath.Join(dir, name)
		f, err := os.OpenFile(lockPath, os.O_RDWR|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			p := strings.TrimSuffix(lockPath, lockSuffix)
			if remove(p) == nil {
				os.Remove(lockPath)
				gone = append(gone, p)
				if log != nil {
					fmt.Fprintf(log, "ocitools %s: removed %s, left by an interrupted %s\n", what, p, what)
				}
			}
		}
		f.Close()
	}
	return gone
}
