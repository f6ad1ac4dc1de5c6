package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/spec"
)

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check a bundle's config.json against the runtime-spec schema and its rootfs",
		ArgsUsage: "BUNDLE",
		Description: "Checks BUNDLE/config.json against the JSON schema of runtime-spec " +
			"and what the schema cannot see: process.args[0] resolves inside the rootfs to an " +
			"executable file, absolute mount destinations and cwd, no duplicate namespaces or " +
			"mounts, ids in range, a hostname only with a uts namespace. Prints one line per " +
			"problem and exits 1 when there is any.",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("validate: give exactly one argument, the bundle directory (holding config.json)", 2)
			}
			bundle := c.Args().First()
			errs := spec.ValidateBundle(bundle)
			if len(errs) == 0 {
				fmt.Fprintf(c.App.Writer, "%s: valid\n", bundle)
				return nil
			}
			for _, err := range errs {
				fmt.Fprintf(c.App.ErrWriter, "%s: %v\n", bundle, err)
			}
			return cli.Exit(fmt.Sprintf("validate: %s: %d problem(s)", bundle, len(errs)), 1)
		},
	}
}
