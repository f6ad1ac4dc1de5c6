package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/bundle"
	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/internal/partial"
	"github.com/ocitools/ocitools/rootfs"
)

const buildDescription = `build is the builder of the derivations that buildContainer (nix/oci-tools.nix)
makes: Nix runs "ocitools build" with __structuredAttrs, and it reads the closure
(exportReferencesGraph.closure) and the container options (the "container"
attribute) from .attrs.json, then writes the bundle to the "out" output.

Outside a Nix build, give both --attrs (a structured-attrs JSON file) and --out
(a directory that does not exist yet). The bundle is built next to --out and
renamed into place only when complete. SIGINT or SIGTERM removes the partial
output (exit 128+N); what SIGKILL leaves (.NAME.partial-* beside --out) is
removed by the next build into the same directory, or by hand with rm -rf
(directories get their read-only store modes only in the build's last step).`

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
// out appears only complete. SIGINT or SIGTERM removes the partial output
// before ocitools exits; what a SIGKILL leaves (its directories writable by
// their owner: rootfs.Build sets the store's 0555 last) is removed by the next
// build into the same directory, whose lock file shows that no build owns it
// any more, or by rm -rf.
func buildInto(attrsFile, out, self string) error {
	// ReadAttrsFile reads only a bounded regular file: a FIFO or a device
	// given as --attrs does not block or exhaust memory.
	attrs, err := derivation.ReadAttrsFile(attrsFile)
	if err != nil {
		return fmt.Errorf("build: --attrs: %w", err)
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("build: --out %s already exists; give a new directory", out)
	}
	// Subscribed before anything is created: a signal from here on is handled.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	part, err := partial.Create(out, partialInfix, "build", rootfs.RemoveAll, os.Stderr)
	if err != nil {
		return fmt.Errorf("build: --out %s: %w", out, err)
	}
	defer part.Release()
	tmp := part.Path

	err = buildOrRemove("build", tmp, sigs, func() error {
		if err := bundle.Build(bundle.Request{Attrs: attrs, Out: tmp, Self: self}); err != nil {
			return fmt.Errorf("build: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		_ = rootfs.RemoveAll(tmp)
		return fmt.Errorf("build: moving the bundle into place: %w", err)
	}
	return nil
}

// partialInfix names build's partial outputs (internal/partial).
const partialInfix = ".partial-"
