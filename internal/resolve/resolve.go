// Package resolve follows a path through symbolic links inside a tree that
// is not the host's (a bundle's rootfs seen through its mounts, an image's
// layers, a closure and its copyToRoot tree): the one resolver of entry
// points, so that build, validate and run agree on where a program is.
package resolve

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// MaxHops bounds the symbolic links followed in one resolution, as the
// kernel's limit does.
const MaxHops = 40

// ErrLoop is returned past MaxHops.
var ErrLoop = errors.New("too many levels of symbolic links")

// Node is what a tree says of one path.
type Node struct {
	Symlink bool
	Target  string // a symlink's target
	Dir     bool
}

// Path follows the absolute path p component by component. lstat answers
// for one clean absolute path of the tree (without following it); an error
// from it ends the walk and is returned as it is. A symlink's target takes
// its place: an absolute one from the tree's root, a relative one from the
// link's directory; ".." never leaves the root. It returns the final clean
// path and its node.
func Path(p string, lstat func(string) (Node, error)) (string, Node, error) {
	todo := split(p)
	cur := "/"
	hops := 0
	for len(todo) > 0 {
		part := todo[0]
		todo = todo[1:]
		if part == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		n, err := lstat(next)
		if err != nil {
			return "", Node{}, err
		}
		if n.Symlink {
			if hops++; hops > MaxHops {
				return "", Node{}, fmt.Errorf("%s: %w", p, ErrLoop)
			}
			if strings.HasPrefix(n.Target, "/") {
				cur = "/"
			}
			todo = append(split(n.Target), todo...)
			continue
		}
		if len(todo) > 0 && !n.Dir {
			return "", Node{}, fmt.Errorf("%s is not a directory", next)
		}
		cur = next
		if len(todo) == 0 {
			return cur, n, nil
		}
	}
	// p was "/", or ended with ".." or a link to a directory above.
	n, err := lstat(cur)
	if err != nil {
		return "", Node{}, err
	}
	return cur, n, nil
}

func split(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}
