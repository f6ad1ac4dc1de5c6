// Package bundle builds an OCI runtime bundle from a build environment: it is
// the I/O edge that joins the derivation's attributes, the generated runtime
// configuration and the materialised rootfs.
package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/rootfs"
	"github.com/ocitools/ocitools/spec"
)

// Layout of a bundle directory.
const (
	ConfigFile = "config.json"
	RootfsDir  = "rootfs"
	BinDir     = "bin"
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

	opts, err := spec.ParseOptions(req.Attrs.Options)
	if err != nil {
		return fmt.Errorf("container options: %w", err)
	}
	cfg, err := spec.Generate(opts, spec.Env{StorePaths: req.Attrs.Closure.StorePaths(), System: req.Attrs.System})
	if err != nil {
		return fmt.Errorf("container options: %w", err)
	}
	if err := os.MkdirAll(req.Out, 0o755); err != nil {
		return fmt.Errorf("creating the output: %w", err)
	}
	if err := buildRootfs(req, opts, cfg); err != nil {
		return err
	}
	if errs := spec.Validate(cfg, filepath.Join(req.Out, RootfsDir)); len(errs) > 0 {
		return fmt.Errorf("the bundle would not start:\n  %w", errors.Join(errs...))
	}
	if err := linkRunner(req); err != nil {
		return err
	}
	return writeConfig(filepath.Join(req.Out, ConfigFile), cfg)
}

func buildRootfs(req Request, opts *spec.Options, cfg *specs.Spec) error {
	mode := opts.StoreMode
	if mode == "" {
		mode = "copy"
	}
	verify := rootfs.DefaultVerify
	if opts.Verify != nil {
		verify = *opts.Verify
	}
	dirs, files := spec.RootfsNeedsWith(cfg, isFile)
	var links []rootfs.Symlink
	for _, l := range spec.RootfsSymlinks(cfg) {
		links = append(links, rootfs.Symlink{Path: l.Path, Target: l.Target})
	}
	plan := rootfs.Plan{
		Closure:     req.Attrs.Closure,
		Mode:        mode,
		Verify:      verify,
		Contents:    opts.Contents,
		MountPoints: dirs,
		MountFiles:  files,
		Symlinks:    links,
		SourceRoot:  req.SourceRoot,
	}
	if cfg.Process != nil {
		plan.UID, plan.GID = cfg.Process.User.UID, cfg.Process.User.GID
	}
	if err := rootfs.Build(filepath.Join(req.Out, RootfsDir), plan); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if err := rootfs.WriteManifest(req.Out, req.Attrs.Closure, mode); err != nil {
		return fmt.Errorf("manifest: %w", err)
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
	bin := filepath.Join(req.Out, BinDir)
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
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", ConfigFile, err)
	}
	data = append(data, '\n')
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", ConfigFile, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", ConfigFile, err)
	}
	return nil
}
