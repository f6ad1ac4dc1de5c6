package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/internal/readfile"
	"github.com/ocitools/ocitools/spec"
)

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check a bundle's config.json against the runtime-spec schema and its rootfs",
		ArgsUsage: "BUNDLE",
		Description: "Checks BUNDLE/config.json against the JSON schema of runtime-spec " +
			"and what the schema cannot see: process.args[0] resolves inside the rootfs to an " +
			"executable file, root.path is \"rootfs\", bind sources are absolute, no mount at /, " +
			"/proc is a proc mount, absolute mount destinations and cwd (not inside /proc or /sys, " +
			"and under /nix/store only in the closure), no duplicate namespaces, mounts or JSON keys, " +
			"ids, oomScoreAdj and host name lengths in range, known capability and rlimit names, a " +
			"hostname only with a uts namespace. config.json must be a regular file of at most " +
			fmt.Sprint(readfile.ConfigLimit>>20) + " MiB. " +
			"Prints one line per problem and exits 1 when there is any.",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("validate: give exactly one argument, the bundle directory (holding config.json)", 2)
			}
			bundle := c.Args().First()
			return reportProblems(c, bundle, "valid", spec.ValidateBundle(bundle))
		},
	}
}

// reportProblems prints "PATH: valid" (with what it is) when errs is empty,
// else one line per problem and exits 1: the output of validate for a bundle
// and for an image layout alike.
func reportProblems(c *cli.Context, path, valid string, errs []error) error {
	if len(errs) == 0 {
		fmt.Fprintf(c.App.Writer, "%s: %s\n", path, valid)
		return nil
	}
	for _, err := range errs {
		fmt.Fprintf(c.App.ErrWriter, "%s: %v\n", path, err)
	}
	return cli.Exit(fmt.Sprintf("validate: %s: %d problem(s)", path, len(errs)), 1)
}
