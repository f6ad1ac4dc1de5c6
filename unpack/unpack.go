// Package unpack turns an OCI image into an OCI runtime bundle: the image's
// layers applied in order (whiteouts honoured) into rootfs/, and config.json
// made from the image config with buildContainer's defaults.
//
// An image is untrusted input. Every path it names is resolved inside the
// rootfs (openat2 RESOLVE_IN_ROOT, or a component-by-component walk that
// never lets the kernel follow a symlink), blobs are read up to their
// declared size and checked against their digests, layers against the
// config's diff_ids, and the uncompressed size and entry count are bounded.
// The bundle is made in a temporary directory beside its destination and
// renamed into place when complete; on any error it is removed.
package unpack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ocitools/ocitools/image/compress"
	"github.com/ocitools/ocitools/internal/partial"
	bundlelayout "github.com/ocitools/ocitools/layout"
	"github.com/ocitools/ocitools/options"
	"github.com/ocitools/ocitools/spec"
)

// Options of one unpack.
type Options struct {
	// Image is an OCI image layout directory, optionally followed by
	// ":TAG" (the org.opencontainers.image.ref.name of index.json).
	Image string
	// Bundle is the directory to create; it must not exist.
	Bundle string
	// Platform chooses from a multi-platform index; zero means the host's.
	Platform Platform
	// Args, when not empty, replace the image's Entrypoint and Cmd.
	Args []string
	// Limits bound sizes and counts; zero fields take DefaultLimits'.
	Limits Limits
	// Privileged keeps ownership (and file capabilities). The default,
	// PrivilegedAuto, is true when running as root.
	Privileged Privilege
	// Log receives notes (what was skipped); nil discards them.
	Log io.Writer
}

// Privilege says whether to keep the image's file owners.
type Privilege int

// Privilege values.
const (
	PrivilegedAuto Privilege = iota
	PrivilegedYes
	PrivilegedNo
)

// Result says what an unpack did.
type Result struct {
	Image   *Image
	Layers  int
	Entries int64
	Bytes   int64 // uncompressed layer bytes
	Written int64 // bytes written to files
	Skipped []Skipped
}

// SplitImageRef splits "DIR:TAG" when DIR is an image layout and TAG names
// no path; otherwise the whole string is the directory.
func SplitImageRef(s string) (dir, tag string) {
	if _, err := os.Stat(filepath.Join(s, "oci-layout")); err == nil {
		return s, ""
	}
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || strings.ContainsRune(s[i+1:], '/') {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// IsLayout tells whether s (DIR or DIR:TAG) names an image layout directory.
func IsLayout(s string) bool {
	dir, _ := SplitImageRef(s)
	_, err := os.Stat(filepath.Join(dir, "oci-layout"))
	return err == nil
}

// Unpack makes the bundle. ctx being done (SIGINT, SIGTERM in the CLI) stops
// it and removes what was made.
func Unpack(ctx context.Context, o Options) (res *Result, err error) {
	if o.Bundle == "" {
		return nil, errors.New("no bundle directory given")
	}
	bundle := filepath.Clean(o.Bundle)
	if _, err := os.Lstat(bundle); err == nil {
		return nil, fmt.Errorf("bundle %s already exists: name a new directory", o.Bundle)
	}
	layout, img, err := resolveImage(ctx, o)
	if err != nil {
		return nil, err
	}
	privileged := o.Privileged == PrivilegedYes || (o.Privileged == PrivilegedAuto && os.Geteuid() == 0)

	// The temporary directory is beside the bundle, so the final rename
	// stays in one file system; it is private (0700) until complete.
	// A partial output (internal/partial): what an unpack killed with
	// SIGKILL left is reclaimed by the next one beside the same bundle.
	part, err := partial.Create(bundle, ".unpack-", "unpack", removeTree, o.Log)
	if err != nil {
		return nil, fmt.Errorf("creating a temporary directory beside %s: %w", o.Bundle, err)
	}
	defer part.Release()
	tmp := part.Path
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("creating a temporary directory beside %s: %w", o.Bundle, err)
	}
	defer func() {
		if err != nil {
			if rerr := removeTree(tmp); rerr != nil {
				err = fmt.Errorf("%w (and removing the partial bundle %s failed: %v)", err, tmp, rerr)
			}
		}
	}()
	rootfs := filepath.Join(tmp, bundlelayout.RootfsDir)
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", rootfs, err)
	}
	r, err := openRoot(rootfs)
	if err != nil {
		return nil, err
	}
	defer r.close()
	a := newApplier(r, privileged, o.Limits)
	a.space = spaceOf(rootfs)
	for i, ld := range img.Manifest.Layers {
		where := fmt.Sprintf("layer %d (%s)", i+1, ld.Digest)
		if err := applyBlob(ctx, layout, a, ld, img.Config.RootFS.DiffIDs[i], where); err != nil {
			return nil, err
		}
	}
	if err := a.finish(ctx); err != nil {
		return nil, err
	}
	if err := writeConfig(img, o, r, tmp); err != nil {
		return nil, err
	}
	// As root the bundle holds the image's set-id files and its owners'
	// private files: only root may enter it. A user's bundle is its own.
	mode := os.FileMode(0o700)
	if !privileged {
		mode = 0o755
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, bundle, unix.RENAME_NOREPLACE); err != nil {
		return nil, fmt.Errorf("moving the bundle into place at %s: %w", o.Bundle, err)
	}
	logSkips(o.Log, a.skips())
	return &Result{
		Image: img, Layers: len(img.Manifest.Layers), Entries: a.entries,
		Bytes: a.streamBytes, Written: a.written, Skipped: a.skips(),
	}, nil
}

// resolveImage opens the layout o.Image names and finds its image for
// o.Platform (the host's when unset).
func resolveImage(ctx context.Context, o Options) (*Layout, *Image, error) {
	dir, tag := SplitImageRef(o.Image)
	layout, err := OpenLayout(dir)
	if err != nil {
		return nil, nil, err
	}
	plat := o.Platform
	if plat.OS == "" {
		plat = HostPlatform()
	}
	img, err := layout.Resolve(ctx, tag, plat)
	if err != nil {
		return nil, nil, err
	}
	if img.Config.OS != plat.OS || img.Config.Architecture != plat.Architecture {
		return nil, nil, fmt.Errorf("image %s is for %s/%s, not %s: choose the platform with --platform %s/%s",
			o.Image, img.Config.OS, img.Config.Architecture, plat, img.Config.OS, img.Config.Architecture)
	}
	return layout, img, nil
}

// writeConfig writes the bundle's config.json (in tmp, over the unpacked
// root r) from the image's config, once the mount points it names are
// placed and it passes the checks run and validate make.
func writeConfig(img *Image, o Options, r *root, tmp string) error {
	cfg, err := runtimeConfig(img, o.Args, r)
	if err != nil {
		return fmt.Errorf("image %s: %w", o.Image, err)
	}
	// Refused as run and validate would refuse the bundle (its size).
	cfgData, err := spec.EncodeConfig(filepath.Join(o.Bundle, bundlelayout.ConfigFile), cfg)
	if err != nil {
		return fmt.Errorf("image %s: %w", o.Image, err)
	}
	if err := placeMountPoints(r, cfg); err != nil {
		return err
	}
	if errs := spec.Validate(cfg, filepath.Join(tmp, bundlelayout.RootfsDir)); len(errs) > 0 {
		return fmt.Errorf("the unpacked image would not start:\n  %w", errors.Join(errs...))
	}
	if err := os.WriteFile(filepath.Join(tmp, bundlelayout.ConfigFile), cfgData, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", bundlelayout.ConfigFile, err)
	}
	return nil
}

// logSkips says, one line each, what the unpack left out and why.
func logSkips(log io.Writer, skips []Skipped) {
	if log == nil {
		return
	}
	for _, s := range skips {
		n := "1 entry"
		if s.Count != 1 {
			n = fmt.Sprintf("%d entries", s.Count)
		}
		fmt.Fprintf(log, "ocitools unpack: skipped %s: %s (%s): %s\n", s.What, n, strings.Join(s.Examples, ", "), s.Why)
	}
}

// applyBlob applies one layer, checking the compressed blob against its
// digest and the uncompressed stream against diffID.
func applyBlob(ctx context.Context, l *Layout, a *applier, d ocispec.Descriptor, diffID digest.Digest, where string) error {
	comp, err := compress.FromMediaType(d.MediaType)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	blob, err := l.OpenBlob(d)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	defer blob.Close()
	stream, err := compress.NewReader(comp, blob)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	defer stream.Close()
	dv := diffID.Verifier()
	if err := a.applyLayer(ctx, io.TeeReader(stream, dv), where); err != nil {
		// A blob that does not match its digest explains any error reading
		// it: say that rather than what the decompressor tripped on.
		if ctx.Err() == nil {
			if verr := blob.Verify(); verr != nil {
				return fmt.Errorf("%s: %w", where, verr)
			}
		}
		return err
	}
	if err := blob.Verify(); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if !dv.Verified() {
		return fmt.Errorf("%s: its uncompressed content does not match the config's diff_id %s: the image is corrupt or tampered with", where, diffID)
	}
	return nil
}

// runtimeConfig generates config.json's content from the image config.
func runtimeConfig(img *Image, args []string, r *root) (*specs.Spec, error) {
	// Read only when there is a name to look up: an image that sets no
	// User does not depend on what its /etc/passwd is.
	var users userDB
	if img.Config.Config.User != "" {
		var err error
		if users, err = loadUsers(r); err != nil {
			return nil, err
		}
	}
	data, err := configArguments(img, args, users)
	if err != nil {
		return nil, err
	}
	req, err := options.Parse(data, "")
	if err != nil {
		return nil, fmt.Errorf("the image config as buildContainer arguments: %w", err)
	}
	cfg, err := spec.Generate(req, nil)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// placeMountPoints makes what the configuration needs in the rootfs: mount
// points and the working directory as directories (when missing), and the
// symlinks that send tmpfs mounts into /dev (when the image has nothing at
// that path; an image's own /tmp directory is kept).
func placeMountPoints(r *root, cfg *specs.Spec) error {
	dirs, _ := spec.RootfsNeeds(cfg)
	for _, d := range dirs {
		var made []string
		fd, err := r.openDir(strings.TrimPrefix(d, "/"), true, func(p string) { made = append(made, p) })
		if err != nil {
			return fmt.Errorf("mount point %s: %w", d, err)
		}
		unix.Close(fd)
		// openDir makes directories 0700; these are traversed by everyone.
		for _, m := range made {
			if fd, err := r.openDir(m, false, nil); err == nil {
				_ = unix.Fchmod(fd, 0o755)
				unix.Close(fd)
			}
		}
	}
	for _, l := range spec.RootfsSymlinks(cfg) {
		dir, base := splitParent(strings.TrimPrefix(l.Path, "/"))
		fd, err := r.openDir(dir, false, nil)
		if err != nil {
			continue // its parent is not in the image: the runtime copes
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); errors.Is(err, unix.ENOENT) {
			err = unix.Symlinkat(l.Target, fd, base)
			if err != nil {
				unix.Close(fd)
				return fmt.Errorf("creating %s -> %s: %w", l.Path, l.Target, err)
			}
		}
		unix.Close(fd)
	}
	return nil
}
