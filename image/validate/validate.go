package validate

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	// go-digest verifies sha512 digests (which image-spec allows) only when
	// the hash is linked in.
	_ "crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/compress"
	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/internal/readfile"
	"github.com/ocitools/ocitools/internal/resolve"
)

// Limits bound what a layout can make the validator read.
type Limits struct {
	JSON       int64 // index.json, config, oci-layout (manifests: layout.MaxManifestSize)
	LayerBytes int64 // uncompressed bytes of one layer
	Entries    int   // tar entries of the whole image kept for the entrypoint check
	Manifests  int   // manifests in index.json
	Layers     int   // layers of one manifest
}

// DefaultLimits are generous for real images (the 1.3 GiB benchmark closure has
// 23k entries) and small enough for hostile ones (a million entries kept for
// the entrypoint check is a few hundred MiB at most).
var DefaultLimits = Limits{JSON: layout.MaxConfigSize, LayerBytes: 64 << 30, Entries: 1 << 20, Manifests: 1024, Layers: 1024}

// IsLayout reports whether dir holds an OCI image layout (an oci-layout file).
func IsLayout(dir string) bool {
	fi, err := os.Lstat(dir + "/" + v1.ImageLayoutFile)
	return err == nil && fi.Mode().IsRegular()
}

// Layout checks the image layout in dir and returns one error per problem.
func Layout(dir string) []error {
	return LayoutWithLimits(dir, DefaultLimits)
}

// LayoutWithLimits is Layout with explicit limits.
func LayoutWithLimits(dir string, lim Limits) []error {
	r := &layout.Reader{Dir: dir}
	v := &validator{dir: dir, r: r, w: layout.NewWalker(r.Fetch), lim: lim, done: map[digest.Digest]bool{}}
	v.run()
	if v.more > 0 {
		v.problems = append(v.problems, fmt.Errorf("and %d more problems, not listed", v.more))
	}
	return v.problems
}

// validator reads the layout as the other commands do, through image/layout's
// Reader: bounded regular files opened without blocking, blobs of their
// declared size checked against their digests. Blobs may be symlinks (a
// buildIndex layout links to its images' blobs in the store): the digest
// check is what makes their content trusted.
type validator struct {
	dir      string
	r        *layout.Reader
	w        *layout.Walker // reads each index and manifest once
	lim      Limits
	problems []error
	more     int                    // problems past MaxProblems, counted only
	done     map[digest.Digest]bool // manifests and indexes checked
}

// MaxProblems bounds the problems reported one by one: a hostile layout can
// have a problem per descriptor.
const MaxProblems = 100

func (v *validator) fail(format string, args ...any) {
	if len(v.problems) >= MaxProblems {
		v.more++
		return
	}
	v.problems = append(v.problems, fmt.Errorf(format, args...))
}

// readFile reads a bounded regular file at the top of the layout.
func (v *validator) readFile(name string) ([]byte, error) {
	return readfile.Following(filepath.Join(v.dir, name), v.lim.JSON)
}

func (v *validator) run() {
	hdr, err := v.readFile(v1.ImageLayoutFile)
	if err != nil {
		v.fail("%s: %w", v1.ImageLayoutFile, err)
		return
	}
	if err := checkSchema("image-layout-schema.json", hdr); err != nil {
		v.fail("%s: %w", v1.ImageLayoutFile, err)
	}
	idxData, err := v.readFile(v1.ImageIndexFile)
	if err != nil {
		v.fail("%s: %w", v1.ImageIndexFile, err)
		return
	}
	if err := checkSchema("image-index-schema.json", idxData); err != nil {
		v.fail("%s: %w", v1.ImageIndexFile, err)
		return
	}
	var idx v1.Index
	if err := json.Unmarshal(idxData, &idx); err != nil {
		v.fail("%s: %w", v1.ImageIndexFile, err)
		return
	}
	v.manifests(v1.ImageIndexFile, idx, 0)
}

// manifests checks every manifest an index lists, and nested indexes
// (through the walker: one depth limit, each digest once; a manifest listed
// again is not checked again).
func (v *validator) manifests(where string, idx v1.Index, depth int) {
	if len(idx.Manifests) == 0 {
		v.fail("%s: no manifests", where)
	}
	if len(idx.Manifests) > v.lim.Manifests {
		v.fail("%s: %d manifests, more than the %d checked", where, len(idx.Manifests), v.lim.Manifests)
		return
	}
	for i, m := range idx.Manifests {
		if v.done[m.Digest] {
			continue
		}
		v.done[m.Digest] = true
		mw := fmt.Sprintf("%s: manifests[%d] (%s)", where, i, m.Digest)
		if m.MediaType != v1.MediaTypeImageManifest && m.MediaType != v1.MediaTypeImageIndex {
			v.fail("%s: media type %q is not checked (only %s and %s)", mw, m.MediaType, v1.MediaTypeImageManifest, v1.MediaTypeImageIndex)
			continue
		}
		n, err := v.w.Read(context.Background(), m, depth)
		if err != nil {
			v.fail("%s: %w", mw, err)
			continue
		}
		schema := "image-manifest-schema.json"
		if n.Index != nil {
			schema = "image-index-schema.json"
		}
		if err := checkSchema(schema, n.Data); err != nil {
			v.fail("%s: %w", mw, err)
			continue
		}
		if n.Index != nil {
			v.manifests(mw, *n.Index, depth+1)
		} else {
			v.manifest(mw, n.Manifest)
		}
	}
}

func (v *validator) manifest(where string, m *v1.Manifest) {
	if m.Config.MediaType != v1.MediaTypeImageConfig {
		v.fail("%s: config media type %q, want %s", where, m.Config.MediaType, v1.MediaTypeImageConfig)
		return
	}
	cfgData, err := v.r.ReadBlob(m.Config, v.lim.JSON)
	if err != nil {
		v.fail("%s: config: %w", where, err)
		return
	}
	if err := checkSchema("config-schema.json", cfgData); err != nil {
		v.fail("%s: config: %w", where, err)
		return
	}
	var img v1.Image
	if err := json.Unmarshal(cfgData, &img); err != nil {
		v.fail("%s: config: %w", where, err)
		return
	}
	if len(m.Layers) > v.lim.Layers {
		v.fail("%s: %d layers, more than the %d checked", where, len(m.Layers), v.lim.Layers)
		return
	}
	if len(img.RootFS.DiffIDs) != len(m.Layers) {
		v.fail("%s: the config lists %d diff_ids for %d layers", where, len(img.RootFS.DiffIDs), len(m.Layers))
	}
	if img.RootFS.Type != "layers" {
		v.fail("%s: config: rootfs.type %q, want \"layers\"", where, img.RootFS.Type)
	}
	nonEmpty := 0
	for _, h := range img.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if len(img.History) > 0 && nonEmpty != len(m.Layers) {
		v.fail("%s: config: %d history entries with a layer for %d layers", where, nonEmpty, len(m.Layers))
	}
	fsys := newTree(v.lim.Entries)
	layersOK := true
	for i, l := range m.Layers {
		lw := fmt.Sprintf("%s: layer %d (%s)", where, i, l.Digest)
		diffID, err := v.layer(l, fsys)
		if err != nil {
			v.fail("%s: %w", lw, err)
			layersOK = false
			continue
		}
		if i < len(img.RootFS.DiffIDs) && img.RootFS.DiffIDs[i] != diffID {
			v.fail("%s: uncompressed digest %s, but the config's diff_ids[%d] is %s", lw, diffID, i, img.RootFS.DiffIDs[i])
		}
	}
	if !layersOK {
		return // the entrypoint cannot be looked for in unreadable layers
	}
	if fsys.overflow {
		v.fail("%s: more than %d entries in the layers: the entrypoint was not checked", where, v.lim.Entries)
		return
	}
	if err := fsys.checkProgram(img.Config); err != nil {
		v.fail("%s: %w", where, err)
	}
}

// layer streams one layer blob: digest and size of the blob, decompression,
// digest of the tar (the diff_id) and its entries into fsys.
func (v *validator) layer(desc v1.Descriptor, fsys *tree) (digest.Digest, error) {
	alg, err := compress.FromMediaType(desc.MediaType)
	if err != nil {
		return "", err
	}
	if err := layout.CheckDescriptor(desc); err != nil {
		return "", err
	}
	if desc.Digest.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("digest algorithm %s is not checked (only sha256)", desc.Digest.Algorithm())
	}
	f, err := v.r.OpenBlob(desc)
	if err != nil {
		return "", err
	}
	defer f.Close()
	blobHash := sha256.New()
	src := io.TeeReader(io.LimitReader(f, desc.Size), blobHash)
	tarStream, err := compress.NewReader(alg, src)
	if err != nil {
		return "", err
	}
	defer tarStream.Close()
	tarHash := sha256.New()
	limited := &limitReader{r: tarStream, left: v.lim.LayerBytes, max: v.lim.LayerBytes}
	readErr := readTar(io.TeeReader(limited, tarHash), fsys)
	// Read the rest of the blob either way: a blob that is not what its
	// digest says explains any error in its content.
	if _, err := io.Copy(io.Discard, src); err != nil && readErr == nil {
		readErr = err
	}
	if got := digest.NewDigest(digest.SHA256, blobHash); got != desc.Digest {
		return "", fmt.Errorf("the blob's content has digest %s", got)
	}
	if readErr != nil {
		return "", readErr
	}
	return digest.NewDigest(digest.SHA256, tarHash), nil
}

// readTar records every entry of a tar stream, then reads what follows the
// end-of-archive blocks (it counts in the diff_id).
func readTar(r io.Reader, fsys *tree) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		if err := fsys.add(h); err != nil {
			return err
		}
	}
	_, err := io.Copy(io.Discard, r)
	return err
}

type limitReader struct {
	r    io.Reader
	left int64
	max  int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("the uncompressed layer is larger than %d bytes", l.max)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// tree is what the layers add up to, enough to resolve the entrypoint: each
// path's type and, for symlinks, its target. Whiteouts remove entries.
type tree struct {
	nodes    map[string]node
	max      int
	overflow bool
	// work counts entries visited by whiteouts, which scan the tree: a layer
	// of many whiteouts over many entries must not take quadratic time.
	work int
}

const maxWhiteoutWork = 64 << 20

type node struct {
	typ  byte
	link string
	mode int64
}

func newTree(max int) *tree {
	return &tree{nodes: map[string]node{"/": {typ: tar.TypeDir, mode: 0o755}}, max: max}
}

// add records a tar entry; an entry whose name escapes the root is a problem.
func (t *tree) add(h *tar.Header) error {
	name := h.Name
	if name == "" || strings.HasPrefix(name, "/") {
		return fmt.Errorf("entry %q: names must be relative", h.Name)
	}
	for _, part := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		if part == ".." {
			return fmt.Errorf("entry %q: \"..\" would escape the root", h.Name)
		}
	}
	p := path.Join("/", name)
	base := path.Base(p)
	if strings.HasPrefix(base, ".wh.") {
		t.work += len(t.nodes)
		if t.work > maxWhiteoutWork {
			t.overflow = true
			return nil
		}
	}
	if base == ".wh..wh..opq" {
		dir := path.Dir(p)
		for k := range t.nodes {
			if strings.HasPrefix(k, dir+"/") {
				delete(t.nodes, k)
			}
		}
		return nil
	}
	if strings.HasPrefix(base, ".wh.") {
		gone := path.Join(path.Dir(p), strings.TrimPrefix(base, ".wh."))
		for k := range t.nodes {
			if k == gone || strings.HasPrefix(k, gone+"/") {
				delete(t.nodes, k)
			}
		}
		return nil
	}
	if h.Typeflag == tar.TypeLink {
		target := path.Join("/", h.Linkname)
		n, ok := t.nodes[target]
		if !ok {
			return fmt.Errorf("entry %q: hard link to %q, which no earlier entry holds", h.Name, h.Linkname)
		}
		t.put(p, n)
		return nil
	}
	t.put(p, node{typ: h.Typeflag, link: h.Linkname, mode: h.Mode})
	return nil
}

func (t *tree) put(p string, n node) {
	if _, ok := t.nodes[p]; !ok && len(t.nodes) >= t.max {
		t.overflow = true
		return
	}
	t.nodes[p] = n
}

// resolve follows symlinks (inside the image) to the final path
// (resolve.Path, the one entry-point resolver).
func (t *tree) resolve(p string) (string, node, error) {
	final, _, err := resolve.Path(p, func(q string) (resolve.Node, error) {
		n, ok := t.nodes[q]
		if !ok {
			return resolve.Node{}, fmt.Errorf("%s: %w", q, fs.ErrNotExist)
		}
		return resolve.Node{Symlink: n.typ == tar.TypeSymlink, Target: n.link, Dir: n.typ == tar.TypeDir}, nil
	})
	if err != nil {
		return "", node{}, err
	}
	return final, t.nodes[final], nil
}

// checkProgram: the entrypoint (or Cmd[0]) is an executable file of the
// image, found directly when absolute, else in the config's PATH.
func (t *tree) checkProgram(c v1.ImageConfig) error {
	prog := ""
	switch {
	case len(c.Entrypoint) > 0:
		prog = c.Entrypoint[0]
	case len(c.Cmd) > 0:
		prog = c.Cmd[0]
	default:
		return nil
	}
	var candidates []string
	if strings.Contains(prog, "/") {
		candidates = []string{path.Join("/", prog)}
		if !path.IsAbs(prog) {
			candidates = []string{path.Join(workingDir(c), prog)}
		}
	} else {
		for _, dir := range strings.Split(envPath(c.Env), ":") {
			if dir != "" {
				candidates = append(candidates, path.Join("/", dir, prog))
			}
		}
	}
	var firstErr error
	for _, cand := range candidates {
		_, n, err := t.resolve(cand)
		if err == nil && n.typ != tar.TypeReg {
			err = fmt.Errorf("%s is not a regular file", cand)
		}
		if err == nil && n.mode&0o111 == 0 {
			err = fmt.Errorf("%s is not executable (mode %04o)", cand, n.mode)
		}
		if err == nil {
			return nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = errors.New("no PATH to search")
	}
	return fmt.Errorf("the program %q is not an executable in the image: %w", prog, firstErr)
}

func workingDir(c v1.ImageConfig) string {
	if c.WorkingDir != "" {
		return c.WorkingDir
	}
	return "/"
}

// envPath is the image's PATH, or the one runtimes use when it has none.
func envPath(env []string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			return v
		}
	}
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}
