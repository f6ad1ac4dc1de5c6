// Command ocitools builds and runs OCI runtime bundles made from Nix closures.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/internal/escape"
	ocirun "github.com/ocitools/ocitools/run"
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
			buildImageCommand(),
			buildLayerCommand(),
			planLayersCommand(),
			withImageLayouts(validateCommand()),
			verifyCommand(),
			withImages(runCommand()),
			unpackCommand(),
			archiveCommand(),
			pushCommand(),
			pullCommand(),
			sbomCommand(),
			lockCommand(),
			fetchBlobCommand(),
			lockLayoutCommand(),
			buildIndexCommand(),
			copyProgramCommand(),
		},
		// Errors are printed once, by main, with the program name.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

func main() {
	run := func() error { return newApp().Run(os.Args) }
	// A bundle's bin/NAME link to this program runs that bundle (nix run), and
	// every argument goes to the container: checked first, so that no
	// argument reaches ocitools itself.
	if bundle, ok := multicall(os.Args); ok {
		run = func() error { return runMulticall(bundle, os.Args[1:]) }
	} else if handled, code := ocirun.Helper(os.Args); handled {
		// ocitools run re-executes itself to clean up in a user namespace.
		os.Exit(code)
	}
	// A copy program's bin/ACTION link (nix/registry.nix) does that action.
	if prog, ok := copyMulticall(os.Args); ok {
		run = func() error { return runCopy(prog, os.Args[1:]) }
	}
	if err := run(); err != nil {
		// An empty message: the exit status is a container's, which spoke for itself.
		// Escaped: a message may quote what a registry, an image or a
		// bundle said, which must not reach the terminal as control sequences.
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(os.Stderr, "ocitools: %s\n", escape.Text(msg))
		}
		if coder, ok := err.(cli.ExitCoder); ok {
			os.Exit(coder.ExitCode())
		}
		os.Exit(1)
	}
}
