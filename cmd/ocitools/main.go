// Command ocitools builds and runs OCI runtime bundles made from Nix closures.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// version is set with -ldflags "-X main.version=..." by the Nix package.
var version = "dev"

func newApp() *cli.App {
	return &cli.App{
		Name:    "ocitools",
		Usage:   "turn Nix closures into OCI runtime bundles, and run them",
		Version: version,
		Commands: []*cli.Command{
			buildCommand(),
			validateCommand(),
			verifyCommand(),
			runCommand(),
		},
		// Errors are printed once, by main, with the program name.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "ocitools: %v\n", err)
		if coder, ok := err.(cli.ExitCoder); ok {
			os.Exit(coder.ExitCode())
		}
		os.Exit(1)
	}
}
