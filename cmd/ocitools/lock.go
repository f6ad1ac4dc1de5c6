package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/registry"
	"github.com/ocitools/ocitools/unpack"
)

// platformFlag is --platform of pull, lock and the registry builders.
func platformFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "platform", Usage: usage}
}

// platformOf reads --platform, or the host's when absent and host is set.
func platformOf(c *cli.Context, host bool) (*unpack.Platform, error) {
	s := c.String("platform")
	if s == "" {
		if !host {
			return nil, nil
		}
		p := unpack.HostPlatform()
		return &p, nil
	}
	p, err := unpack.ParsePlatform(s)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func lockCommand() *cli.Command {
	return &cli.Command{
		Name:      "lock",
		Usage:     "write the lock file of a registry image for ociTools.pullImageFromLock",
		ArgsUsage: "REGISTRY/REPOSITORY[:TAG|@DIGEST]",
		Description: "Prints, as JSON on standard output, what pins one image of a registry: " +
			"its manifest's exact bytes and digest, its platform (this machine's or --platform, " +
			"chosen from an index) and every blob it references. Only the manifests and the " +
			"config are fetched. Commit the file next to the Nix expression: " +
			"ociTools.pullImageFromLock fetches each blob as its own fixed-output derivation, " +
			"so a new version of the image downloads only the blobs that changed.",
		Flags: append(registryFlags(), platformFlag("os/arch[/variant] to choose from a multi-platform image (default: this machine's)")),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("lock: give one argument, the image REGISTRY/REPOSITORY[:TAG|@DIGEST]", 2)
			}
			ref, err := registry.ParseRef(c.Args().First())
			if err != nil {
				return cli.Exit("lock: "+err.Error(), 2)
			}
			plat, err := platformOf(c, true)
			if err != nil {
				return cli.Exit("lock: --platform: "+err.Error(), 2)
			}
			o, ctx, cancel := registryOptions(context.Background(), c, false)
			defer cancel()
			lock, err := registry.LockImage(ctx, ref, *plat, o)
			if err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			return registry.WriteLock(c.App.Writer, lock)
		},
	}
}

// fetchBlobCommand is the builder of pullImageFromLock's per-blob
// fixed-output derivations.
func fetchBlobCommand() *cli.Command {
	return &cli.Command{
		Name:      "fetch-blob",
		Usage:     "fetch one blob of a registry repository into a file (pullImageFromLock's builder)",
		ArgsUsage: "REGISTRY/REPOSITORY@DIGEST SIZE FILE",
		Hidden:    true,
		Flags:     registryFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 3 {
				return cli.Exit("fetch-blob: give REGISTRY/REPOSITORY@DIGEST, SIZE and FILE", 2)
			}
			ref, err := registry.ParseRef(c.Args().Get(0))
			if err != nil || ref.Digest == "" {
				return cli.Exit(fmt.Sprintf("fetch-blob: %q must be REGISTRY/REPOSITORY@DIGEST (%v)", c.Args().Get(0), err), 2)
			}
			size, err := strconv.ParseInt(c.Args().Get(1), 10, 64)
			if err != nil || size < 0 {
				return cli.Exit(fmt.Sprintf("fetch-blob: size %q is not a byte count", c.Args().Get(1)), 2)
			}
			o, ctx, cancel := registryOptions(context.Background(), c, false)
			defer cancel()
			desc := ocispec.Descriptor{Digest: digest.Digest(ref.Digest), Size: size}
			if err := registry.FetchBlob(ctx, ref, desc, c.Args().Get(2), o); err != nil {
				return fmt.Errorf("fetch-blob: %w", err)
			}
			return nil
		},
	}
}

// lockLayoutCommand is the builder of pullImageFromLock's layout: the
// lock's manifest and links to the blobs Nix fetched.
func lockLayoutCommand() *cli.Command {
	return &cli.Command{
		Name:      "lock-layout",
		Usage:     "write the OCI image layout of a lock file from its fetched blobs (pullImageFromLock's builder)",
		ArgsUsage: "LOCKFILE DIR DIGEST=FILE...",
		Hidden:    true,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) < 2 {
				return cli.Exit("lock-layout: give LOCKFILE, DIR and DIGEST=FILE for each blob", 2)
			}
			blobs := map[digest.Digest]string{}
			for _, a := range args[2:] {
				d, file, ok := strings.Cut(a, "=")
				if !ok || digest.Digest(d).Validate() != nil {
					return cli.Exit(fmt.Sprintf("lock-layout: %q is not DIGEST=FILE", a), 2)
				}
				blobs[digest.Digest(d)] = file
			}
			if err := registry.LayoutFromLock(args[0], blobs, args[1]); err != nil {
				return fmt.Errorf("lock-layout: %w", err)
			}
			return nil
		},
	}
}
