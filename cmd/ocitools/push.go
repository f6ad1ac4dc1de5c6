package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/registry"
)

// registryFlags are the flags push and pull share.
func registryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "creds", Usage: "USER:PASSWORD for the registry (else the auth files are read)"},
		&cli.StringFlag{Name: "authfile", Usage: "read credentials from this file only (docker config.json / podman auth.json format)"},
		&cli.StringFlag{Name: "ca", Usage: "PEM file of a CA to trust besides the system roots"},
		&cli.BoolFlag{Name: "plain-http", Usage: "speak plain HTTP to the registry (a localhost registry falls back to it by itself)"},
		&cli.IntFlag{Name: "jobs", Value: 4, Usage: "blobs transferred at once"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no per-blob progress, only the summary"},
		&cli.DurationFlag{Name: "timeout", Value: time.Hour, Usage: "give up after this long in all"},
		&cli.DurationFlag{Name: "stall-timeout", Value: 2 * time.Minute, Usage: "give up on a transfer that moves no byte for this long"},
	}
}

func registryOptions(c *cli.Context) (registry.Options, context.Context, context.CancelFunc) {
	o := registry.Options{
		Creds:     c.String("creds"),
		AuthFile:  c.String("authfile"),
		CAFile:    c.String("ca"),
		PlainHTTP: c.Bool("plain-http"),
		Jobs:      c.Int("jobs"),
		Stall:     c.Duration("stall-timeout"),
		Cache:     os.Getenv("OCITOOLS_BLOB_CACHE"),
	}
	if !c.Bool("quiet") {
		o.Progress = registry.NewProgress(os.Stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Duration("timeout"))
	return o, ctx, cancel
}

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
		Flags: registryFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return cli.Exit("push: give two arguments, the image layout directory and the destination REGISTRY/REPOSITORY[:TAG]", 2)
			}
			ref, err := registry.ParseRef(c.Args().Get(1))
			if err != nil {
				return cli.Exit("push: "+err.Error(), 2)
			}
			o, ctx, cancel := registryOptions(c)
			defer cancel()
			st, err := registry.Push(ctx, c.Args().First(), ref, o)
			if err != nil {
				return fmt.Errorf("push: %w", err)
			}
			fmt.Fprintln(c.App.Writer, st.Summary("pushed"))
			return nil
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
			"pull leaves nothing behind. index.json names the root with the tag.",
		Flags: registryFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return cli.Exit("pull: give two arguments, the source REGISTRY/REPOSITORY[:TAG] and the directory to create", 2)
			}
			ref, err := registry.ParseRef(c.Args().First())
			if err != nil {
				return cli.Exit("pull: "+err.Error(), 2)
			}
			o, ctx, cancel := registryOptions(c)
			defer cancel()
			st, err := registry.Pull(ctx, ref, c.Args().Get(1), o)
			if err != nil {
				return fmt.Errorf("pull: %w", err)
			}
			fmt.Fprintln(c.App.Writer, st.Summary("pulled"))
			return nil
		},
	}
}
