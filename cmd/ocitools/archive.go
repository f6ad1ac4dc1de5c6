package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ocitools/ocitools/archive"
	"github.com/urfave/cli/v2"
)

func archiveCommand() *cli.Command {
	return &cli.Command{
		Name:      "archive",
		Usage:     "write an OCI image layout as one file for docker load and podman load",
		ArgsUsage: "LAYOUT FILE",
		Description: "Writes the image in LAYOUT (a directory holding oci-layout, index.json and\n" +
			"blobs/, as buildImage makes) to FILE as one tar: the OCI layout plus a Docker\n" +
			"manifest.json naming the same blobs, which docker load (20.10 and newer),\n" +
			"podman load and skopeo (docker-archive: and oci-archive:) read. FILE - writes\n" +
			"to standard output. The bytes depend only on the layout and the options.\n" +
			"Layers are copied as they are: zstd layers load in docker 20.10 and newer and\n" +
			"in podman (docs/buildImage.md lists which tool reads which compression).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "repository `NAME` for the loaded image (docker's RepoTags NAME:TAG)"},
			&cli.StringFlag{Name: "tag", Usage: "`TAG` instead of index.json's org.opencontainers.image.ref.name"},
			&cli.BoolFlag{Name: "oci-only", Usage: "write the OCI layout alone (an oci-archive, for podman load and skopeo; docker 20.10 cannot load it)"},
		},
		Action: func(ctx *cli.Context) error {
			if ctx.NArg() != 2 {
				return cli.Exit("archive: expected two arguments, the image layout directory and the output file (for example: ocitools archive ./result image.tar)", 2)
			}
			layout, file := ctx.Args().Get(0), ctx.Args().Get(1)
			opts := archive.Options{Name: ctx.String("name"), Tag: ctx.String("tag"), OCIOnly: ctx.Bool("oci-only")}
			if file == "-" {
				if err := archive.Write(ctx.App.Writer, layout, opts); err != nil {
					return fmt.Errorf("archive %s: %w", layout, err)
				}
				return nil
			}
			if err := writeArchiveFile(layout, file, opts); err != nil {
				return fmt.Errorf("archive %s: %w", layout, err)
			}
			return nil
		},
	}
}

// writeArchiveFile writes to a temporary file beside file and renames it into
// place, so that a failure leaves neither a partial file nor a changed one.
func writeArchiveFile(layout, file string, opts archive.Options) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = archive.Write(bw, layout, opts); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err = tmp.Chmod(0o444); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err = os.Rename(tmp.Name(), file); err != nil {
		return err
	}
	return nil
}
