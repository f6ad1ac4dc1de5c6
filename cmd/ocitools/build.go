package main

import (
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
		Flags:       attrsOutFlags("bundle"),
		Action: func(c *cli.Context) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("build: locating the ocitools executable: %w", err)
			}
			return runBuilder(c, "build", derivation.ContainerKey, buildDescription, func(attrs *derivation.Attrs, out string) error {
				if err := bundle.Build(bundle.Request{Attrs: attrs, Out: out, Self: self}); err != nil {
					return fmt.Errorf("build: %w", err)
				}
				return nil
			})
		},
	}
}

func attrsOutFlags(what string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "attrs", Usage: "structured-attrs `FILE` (default: the one Nix provides)"},
		&cli.StringFlag{Name: "out", Usage: what + " `DIR` to create (default: the derivation's out output)"},
	}
}

// runBuilder is every structured-attrs builder (build, build-image,
// build-layer, plan-layers): it reads the attrs (the builder's arguments
// under key) with derivation's one reader, then builds. Inside Nix it writes
// straight into the output: a failed build leaves no valid store path, and
// the builders remove what they wrote. Outside Nix (--attrs and --out) it
// builds into place with buildIntoPlace.
func runBuilder(c *cli.Context, name, key, description string, build func(attrs *derivation.Attrs, out string) error) error {
	if c.NArg() > 0 {
		return fmt.Errorf("%s takes no arguments, got %q (see ocitools %s --help)", name, c.Args().Slice(), name)
	}
	attrsFile, out := c.String("attrs"), c.String("out")
	if (attrsFile == "") != (out == "") {
		return fmt.Errorf("%s: give both --attrs and --out, or neither (inside a Nix build)", name)
	}
	if attrsFile == "" {
		f, err := derivation.FindAttrsFile()
		if err != nil {
			return fmt.Errorf("%s: %w\n\n%s", name, err, description)
		}
		attrs, err := derivation.ReadAttrsFile(f, key)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if out, err = attrs.Out(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return build(attrs, out)
	}
	// ReadAttrsFile reads only a bounded regular file: a FIFO or a device
	// given as --attrs does not block or exhaust memory.
	attrs, err := derivation.ReadAttrsFile(attrsFile, key)
	if err != nil {
		return fmt.Errorf("%s: --attrs: %w", name, err)
	}
	return buildIntoPlace(name, out, func(tmp string) error { return build(attrs, tmp) })
}

// buildIntoPlace builds into a partial output beside out (internal/partial)
// and renames it into place, so out appears only complete. SIGINT or SIGTERM
// removes the partial output before ocitools exits (buildOrRemove); what a
// SIGKILL leaves (its directories writable by their owner: rootfs.Build sets
// the store's 0555 last) is removed by the next build into the same
// directory, whose lock file shows that no build owns it any more, or by
// rm -rf.
func buildIntoPlace(name, out string, build func(tmp string) error) error {
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("%s: --out %s already exists; give a new directory", name, out)
	}
	// Subscribed before anything is created: a signal from here on is handled.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	part, err := partial.Create(out, partialInfix, name, rootfs.RemoveAll, os.Stderr)
	if err != nil {
		return fmt.Errorf("%s: --out %s: %w", name, out, err)
	}
	defer part.Release()
	if err := buildOrRemove(name, part.Path, sigs, func() error { return build(part.Path) }); err != nil {
		return err
	}
	if err := os.Rename(part.Path, out); err != nil {
		_ = rootfs.RemoveAll(part.Path)
		return fmt.Errorf("%s: moving the result into place: %w", name, err)
	}
	return nil
}

// partialInfix names the builders' partial outputs (internal/partial).
const partialInfix = ".partial-"
