package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/image/layout"
)

func buildIndexCommand() *cli.Command {
	return &cli.Command{
		Name:      "build-index",
		Usage:     "the builder of buildIndex: one multi-arch image index layout from image layouts",
		ArgsUsage: "IMAGE...",
		Description: "Writes at --out an OCI image layout whose index.json names (with --tag) " +
			"an image index listing each IMAGE's manifest with the platform of its config. " +
			"The images' blobs are symbolic links to the images' files: nothing is copied.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Required: true, Usage: "the layout directory to create"},
			&cli.StringFlag{Name: "tag", Required: true, Usage: "the index's org.opencontainers.image.ref.name"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.Exit("build-index: give the image layouts as arguments", 2)
			}
			if err := layout.BuildIndex(c.String("out"), c.String("tag"), c.Args().Slice()); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: index of %d images\n", c.String("out"), c.NArg())
			return nil
		},
	}
}
