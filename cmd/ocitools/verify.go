package main

import (
	"fmt"

	"github.com/ocitools/ocitools/rootfs"
	"github.com/urfave/cli/v2"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a bundle's store paths against the NAR hashes Nix recorded",
		ArgsUsage: "BUNDLE",
		Description: "Re-hashes every store path of BUNDLE (a directory built by buildContainer)\n" +
			"and compares it with BUNDLE/closure.json. Copy mode hashes rootfs/nix/store/<path>\n" +
			"and reports store paths added to it; bind mode hashes the host's store paths,\n" +
			"which the bundle mounts at run time. Prints one line per differing path and\n" +
			"exits 1 if there is any.",
		Action: func(ctx *cli.Context) error {
			if ctx.NArg() != 1 {
				return cli.Exit("verify: expected one argument, the bundle directory (for example ./result)", 2)
			}
			bundle := ctx.Args().First()
			n, mismatches, err := rootfs.VerifyBundle(bundle)
			if err != nil {
				return fmt.Errorf("verify %s: %w", bundle, err)
			}
			w := ctx.App.Writer
			for _, m := range mismatches {
				fmt.Fprintln(w, m.String())
			}
			if len(mismatches) > 0 {
				return cli.Exit(fmt.Sprintf("verify: %s: %d differences found checking %d store paths against closure.json", bundle, len(mismatches), n), 1)
			}
			fmt.Fprintf(w, "%s: %d paths verified\n", bundle, n)
			return nil
		},
	}
}
