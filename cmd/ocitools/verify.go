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
		Description: "For each store path of BUNDLE/closure.json, hashes what a container of the bundle\n" +
			"would see there and compares it with the NAR hash Nix recorded: the bundle's copy in\n" +
			"rootfs/nix/store, or the host's store path when config.json bind-mounts it onto itself\n" +
			"(its mount point must then be empty). Store files must have mode 0444 or 0555 and\n" +
			"directories 0555; nothing in the bundle may be setuid, setgid, sticky, world-writable,\n" +
			"a device, a FIFO or a socket; rootfs/nix/store holds nothing else. closure.json's\n" +
			"storeMode does not change what is checked. Prints one line per difference and exits 1\n" +
			"if there is any.",
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
