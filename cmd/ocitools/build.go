package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/bundle"
	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/rootfs"
)

const buildDescription = `build is the builder of the derivations that buildContainer (nix/oci-tools.nix)
makes: Nix runs "ocitools build" with __structuredAttrs, and it reads the closure
(exportReferencesGraph.closure) and the container options (the "container"
attribute) from .attrs.json, then writes the bundle to the "out" output.

Outside a Nix build, give both --attrs (a structured-attrs JSON file) and --out
(a directory that does not exist yet). The bundle is built next to --out and
renamed into place only when complete.`

func buildCommand() *cli.Command {
	return &cli.Command{
		Name:        "build",
		Usage:       "build an OCI runtime bundle (the builder of buildContainer derivations)",
		Description: buildDescription,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "attrs", Usage: "structured-attrs `FILE` (default: the one Nix provides)"},
			&cli.StringFlag{Name: "out", Usage: "bundle `DIR` to create (default: the derivation's out output)"},
		},
		Action: runBuild,
	}
}

func runBuild(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("build takes no arguments, got %q (see ocitools build --help)", c.Args().Slice())
	}
	attrsFile, out := c.String("attrs"), c.String("out")
	if (attrsFile == "") != (out == "") {
		return errors.New("build: give both --attrs and --out, or neither (inside a Nix build)")
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("build: locating the ocitools executable: %w", err)
	}
	if attrsFile == "" {
		return buildInNix(self)
	}
	return buildInto(attrsFile, out, self)
}

// buildInNix writes straight into the output path: a failed build leaves no valid
// store path, and Build removes what it wrote.
func buildInNix(self string) error {
	attrsFile, err := derivation.FindAttrsFile()
	if err != nil {
		return fmt.Errorf("build: %w\n\n%s", err, buildDescription)
	}
	attrs, err := derivation.ReadAttrsFile(attrsFile)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	out, err := attrs.Out()
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	return bundle.Build(bundle.Request{Attrs: attrs, Out: out, Self: self})
}

// buildInto builds into a temporary sibling of out and renames it into place, so
// out appears only complete.
func buildInto(attrsFile, out, self string) error {
	attrs, err := derivation.ReadAttrsFile(attrsFile)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("build: --out %s already exists; give a new directory", out)
	}
	parent := filepath.Dir(out)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".partial-")
	if err != nil {
		return fmt.Errorf("build: --out %s: %w", out, err)
	}
	// Build wants to create its directory itself.
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if err := bundle.Build(bundle.Request{Attrs: attrs, Out: tmp, Self: self}); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		_ = rootfs.RemoveAll(tmp)
		return fmt.Errorf("build: moving the bundle into place: %w", err)
	}
	return nil
}
