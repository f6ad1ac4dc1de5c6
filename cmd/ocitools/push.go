package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/registry"
)

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "send an image layout (a buildImage or buildIndex result) to a registry, only what it lacks",
		ArgsUsage: "IMAGE REGISTRY/REPOSITORY[:TAG]",
		Description: "Sends the image or multi-arch index of the OCI image layout IMAGE to the " +
			"registry. Blobs the repository has are not sent (HEAD first); blobs another " +
			"repository of the same registry got from ocitools are mounted from there; the " +
			"others are verified against their digest, then sent in parallel (--jobs). " +
			"Manifests go last, children before their index, and the tag is written only " +
			"when it does not already point at the image. Without a tag in REF, the tag is the " +
			"layout's org.opencontainers.image.ref.name (else latest). Credentials: --creds, " +
			"else $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json, " +
			"~/.docker/config.json. Set OCITOOLS_BLOB_CACHE to move the record of blob " +
			"locations ('-' for none).",
		Flags: transferFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return cli.Exit("push: give two arguments, the image layout directory and the destination REGISTRY/REPOSITORY[:TAG]", 2)
			}
			ref, err := registry.ParseRef(c.Args().Get(1))
			if err != nil {
				return cli.Exit("push: "+err.Error(), 2)
			}
			// SIGINT, SIGTERM, SIGHUP: the uploads stop, no tag is changed,
			// the record of blob locations keeps what was sent.
			return runStage("push", func(ctx context.Context, _ *stage) error {
				o, ctx, cancel := registryOptions(ctx, c, !c.Bool("quiet"))
				defer cancel()
				st, err := registry.Push(ctx, c.Args().First(), ref, o)
				if err != nil {
					return fmt.Errorf("push: %w", err)
				}
				fmt.Fprintln(c.App.Writer, st.Summary("pushed"))
				return nil
			})
		},
	}
}

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "fetch an image (or a multi-arch index with all its images) into an OCI image layout",
		ArgsUsage: "REGISTRY/REPOSITORY[:TAG|@DIGEST] DIR",
		Description: "Writes a new OCI image layout at DIR (which must not exist or be empty) " +
			"holding the image, or the index and every image it lists. Every manifest and " +
			"blob is checked against its digest and size; manifests larger than 4 MiB are " +
			"refused. The layout is assembled beside DIR and renamed into place, so a failed " +
			"pull leaves nothing behind. index.json names the root with the tag. With " +
			"--platform, only that platform's image is fetched from an index (index.json then " +
			"names that image's manifest). The CycloneDX SBOM attached to the image as an OCI " +
			"referrer, when there is one, is written beside the layout as sbom.cdx.json " +
			"(--sbom=false: not fetched).",
		Flags: append(transferFlags(),
			platformFlag("os/arch[/variant]: from an index, fetch only that platform's image (default: every platform)"),
			&cli.BoolFlag{Name: "sbom", Value: true, Usage: "fetch the image's SBOM referrer into DIR/sbom.cdx.json (an index: each image's into DIR/sbom/HEX.cdx.json)"}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return cli.Exit("pull: give two arguments, the source REGISTRY/REPOSITORY[:TAG] and the directory to create", 2)
			}
			ref, err := registry.ParseRef(c.Args().First())
			if err != nil {
				return cli.Exit("pull: "+err.Error(), 2)
			}
			plat, err := platformOf(c, false)
			if err != nil {
				return cli.Exit("pull: --platform: "+err.Error(), 2)
			}
			// SIGINT, SIGTERM, SIGHUP: Pull removes its partial layout; one
			// that SIGKILL left is reclaimed by the next pull beside DIR.
			return runStage("pull", func(ctx context.Context, _ *stage) error {
				o, ctx, cancel := registryOptions(ctx, c, !c.Bool("quiet"))
				defer cancel()
				o.Platform = plat
				o.PullSBOM = c.Bool("sbom")
				st, err := registry.Pull(ctx, ref, c.Args().Get(1), o)
				if err != nil {
					return fmt.Errorf("pull: %w", err)
				}
				fmt.Fprintln(c.App.Writer, st.Summary("pulled"))
				return nil
			})
		},
	}
}
