// Package bundle builds an OCI runtime bundle from a build environment: it is
// the I/O edge that joins the derivation's attributes, the generated runtime
// configuration and the materialised rootfs.
package bundle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/layout"
	"github.com/ocitools/ocitools/nixdb"
	"github.com/ocitools/ocitools/options"
	"github.com/ocitools/ocitools/rootfs"
	"github.com/ocitools/ocitools/sbom"
	"github.com/ocitools/ocitools/spec"
)

// Request is one bundle to build.
type Request struct {
	// Attrs is the build environment (structured attrs).
	Attrs *derivation.Attrs
	// Out is the bundle directory to create; it must not exist.
	Out string
	// Self is the ocitools executable; bin/<name> links to it so that the bundle
	// can be started with `nix run` (see cmd/ocitools: multicall).
	Self string
	// SourceRoot is prefixed to store paths when reading them (tests); "" is /.
	SourceRoot string
}

// Build creates the bundle. config.json is written last, after the rootfs is
// complete and the configuration validated, so a bundle that has one is whole;
// on any error the output directory is removed.
func Build(req Request) (err error) {
	if _, statErr := os.Lstat(req.Out); statErr == nil {
		return fmt.Errorf("output %s already exists", req.Out)
	}
	defer func() {
		if err != nil {
			if rmErr := rootfs.RemoveAll(req.Out); rmErr != nil {
				err = fmt.Errorf("%w (and removing the partial output failed: %v)", err, rmErr)
			}
		}
	}()

	r, err := options.Parse(req.Attrs.Options, req.Attrs.System)
	if err != nil {
		return fmt.Errorf("container options: %w", err)
	}
	bom, err := sbomInput(req.Attrs)
	if err != nil {
		return err
	}
	cfg, err := spec.Generate(r, req.Attrs.Closure.StorePaths())
	if err != nil {
		return fmt.Errorf("container options: %w", err)
	}
	if err := os.MkdirAll(req.Out, 0o755); err != nil {
		return fmt.Errorf("creating the output: %w", err)
	}
	if err := buildRootfs(req, r, cfg); err != nil {
		return err
	}
	if errs := spec.Validate(cfg, filepath.Join(req.Out, layout.RootfsDir)); len(errs) > 0 {
		return fmt.Errorf("the bundle would not start:\n  %w", errors.Join(errs...))
	}
	if err := linkRunner(req); err != nil {
		return err
	}
	if bom != nil {
		if err := sbom.Write(req.Out, bom); err != nil {
			return err
		}
	}
	return writeConfig(filepath.Join(req.Out, layout.ConfigFile), cfg)
}

// sbomInput is the bundle's SBOM: its closure, whether the rootfs holds a
// copy or bind-mounts it. nil when the build asks for none.
func sbomInput(a *derivation.Attrs) (*sbom.Input, error) {
	attr, err := sbom.DecodeAttr(a.SBOM)
	if err != nil || attr == nil {
		return nil, err
	}
	return &sbom.Input{Subject: sbom.Subject{Kind: "bundle", Name: a.Name}, Paths: a.Closure.Paths, Attr: *attr}, nil
}

// buildRootfs materialises the rootfs the request and its configuration need.
func buildRootfs(req Request, r *options.Request, cfg *specs.Spec) error {
	dirs, files := spec.RootfsNeedsWith(cfg, func(source string) bool {
		if spec.BundleStoreSource(source) {
			// The bundle's own copy, not made yet: the store path it copies.
			source = req.SourceRoot + strings.TrimPrefix(source, layout.RootfsDir)
		} else if strings.HasPrefix(source, layout.StoreDir+"/") {
			source = req.SourceRoot + source
		}
		return isFile(source)
	})
	plan := rootfs.Plan{
		Closure:     req.Attrs.Closure,
		Mode:        r.StoreMode,
		Verify:      r.Verify,
		Contents:    r.Contents,
		MountPoints: dirs,
		MountFiles:  files,
		Symlinks:    spec.RootfsSymlinks(cfg),
		SourceRoot:  req.SourceRoot,
		Accounts:    r.Accounts,
	}
	if cfg.Process != nil {
		plan.UID, plan.GID = cfg.Process.User.UID, cfg.Process.User.GID
	}
	if err := rootfs.Build(filepath.Join(req.Out, layout.RootfsDir), plan); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if err := rootfs.WriteManifest(req.Out, req.Attrs.Closure, r.StoreMode); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if r.NixDatabase {
		return writeNixDatabase(filepath.Join(req.Out, layout.RootfsDir), req.Attrs.Closure)
	}
	return nil
}

// writeNixDatabase registers the whole closure (what the rootfs's store
// holds, copied or bound) in the rootfs's /nix/var/nix/db.
func writeNixDatabase(rootfsDir string, c *derivation.Closure) error {
	paths, err := nixdb.FromClosure(c, c.StorePaths())
	if err != nil {
		return fmt.Errorf("`initializeNixDatabase`: %w", err)
	}
	dir := filepath.Join(rootfsDir, filepath.FromSlash(nixdb.Dir))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("`initializeNixDatabase`: %w", err)
	}
	if err := nixdb.WriteDir(dir, paths); err != nil {
		return fmt.Errorf("`initializeNixDatabase`: %w", err)
	}
	return nil
}

// isFile tells whether a bind mount's source is a regular file, so that its mount
// point is made a file (a runtime cannot bind a file onto a directory).
func isFile(source string) bool {
	fi, err := os.Stat(source)
	return err == nil && fi.Mode().IsRegular()
}

// linkRunner makes bin/<name> a link to ocitools, which run under that name starts
// the bundle (the flake's `nix run`).
func linkRunner(req Request) error {
	if req.Self == "" {
		return nil
	}
	name := runnerName(req.Attrs.Name)
	bin := filepath.Join(req.Out, layout.BinDir)
	if err := os.Mkdir(bin, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", bin, err)
	}
	if err := os.Symlink(req.Self, filepath.Join(bin, name)); err != nil {
		return fmt.Errorf("linking the runner: %w", err)
	}
	return nil
}

// runnerName is the derivation name, or "run" when that is empty or would clash
// with the multicall's own name.
func runnerName(name string) string {
	if name == "" || name == "ocitools" || strings.ContainsRune(name, '/') {
		return "run"
	}
	return name
}

func writeConfig(path string, cfg *specs.Spec) error {
	data, err := spec.EncodeConfig(path, cfg)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", layout.ConfigFile, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", layout.ConfigFile, err)
	}
	return nil
}
