package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/registry"
	"github.com/ocitools/ocitools/sbom"
)

func sbomCommand() *cli.Command {
	return &cli.Command{
		Name:      "sbom",
		Usage:     "print the CycloneDX SBOM of an image (a layout, a bundle or a registry image)",
		ArgsUsage: "LAYOUT|BUNDLE|REGISTRY/REPOSITORY[:TAG|@DIGEST]",
		Description: "Prints the CycloneDX 1.6 SBOM the build wrote (sbom.cdx.json beside an image " +
			"layout or a bundle's config.json), or the one attached to a registry image as an " +
			"OCI referrer (ocitools push attaches it; found through the referrers API, else the " +
			"sha256-<hex> tag fallback). What is printed has been checked against the CycloneDX " +
			"1.6 JSON schema, and a registry's answer against every digest and size. Exit status 3 " +
			"when there is no SBOM. See docs/sbom.md.",
		Flags: registryFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("sbom: give one argument, an image layout or bundle directory, or a registry reference", 2)
			}
			arg := c.Args().First()
			var data []byte
			var err error
			if fi, statErr := os.Stat(arg); statErr == nil && fi.IsDir() {
				data, err = sbom.ReadFile(arg)
			} else {
				ref, perr := registry.ParseRef(arg)
				if perr != nil {
					return cli.Exit(fmt.Sprintf("sbom: %s is neither a directory nor a registry reference: %v", arg, perr), 2)
				}
				o, ctx, cancel := registryOptions(context.Background(), c, false)
				defer cancel()
				data, err = registry.RemoteSBOM(ctx, ref, o)
			}
			if errors.Is(err, registry.ErrNoSBOM) {
				return cli.Exit("sbom: "+err.Error(), 3)
			}
			if err != nil {
				return fmt.Errorf("sbom: %w", err)
			}
			_, err = c.App.Writer.Write(data)
			return err
		},
	}
}
