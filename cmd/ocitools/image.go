package main

import (
	"errors"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/derivation"
	"github.com/ocitools/ocitools/image"
	imagevalidate "github.com/ocitools/ocitools/image/validate"
	"github.com/ocitools/ocitools/sbom"
)

const buildImageDescription = `build-image is the builder of the derivations that buildImage (nix/image.nix)
makes: it reads the closure (exportReferencesGraph.closure) and the image
arguments (the "image" attribute) from .attrs.json and writes an OCI image
layout (oci-layout, index.json, blobs/sha256/) to the "out" output: one layer
per store path, most shared first, deterministic tar, compressed with pinned
settings so that the digests are the same on every machine.

Outside a Nix build, give both --attrs (a structured-attrs JSON file) and --out
(a directory that does not exist yet). The layout is written next to --out and
renamed into place only when complete, as build does: SIGINT or SIGTERM removes
the partial output (exit 128+N); what SIGKILL leaves (.NAME.partial-* beside
--out) is removed by the next build-image or build into the same directory.`

const buildLayerDescription = `build-layer is the builder of buildLayer derivations: one layer holding the
closure of its deps (minus the paths of the layers it sits on), written once
and linked as it is into every image that lists it. Its output holds "blob"
(the compressed layer) and "layer.json" (media type, digest, size, diff_id and
the store paths it holds).`

func buildImageCommand() *cli.Command {
	return &cli.Command{
		Name:        "build-image",
		Usage:       "build an OCI image layout (the builder of buildImage derivations)",
		Description: buildImageDescription,
		Flags:       attrsOutFlags("layout"),
		Action: func(c *cli.Context) error {
			return runImageBuilder(c, "build-image", image.OptionsKey, image.Build)
		},
	}
}

func buildLayerCommand() *cli.Command {
	return &cli.Command{
		Name:        "build-layer",
		Usage:       "build one reusable image layer (the builder of buildLayer derivations)",
		Description: buildLayerDescription,
		Flags:       attrsOutFlags("layer"),
		Action: func(c *cli.Context) error {
			return runImageBuilder(c, "build-layer", image.LayerOptionsKey, image.BuildLayer)
		},
	}
}

func planLayersCommand() *cli.Command {
	return &cli.Command{
		Name:   "plan-layers",
		Usage:  "plan the groups of layering = \"auto-derivations\" (the builder of buildImage's layer plan; compresses nothing)",
		Hidden: true,
		Flags:  attrsOutFlags("plan"),
		Action: func(c *cli.Context) error {
			return runImageBuilder(c, "plan-layers", image.PlanOptionsKey, image.PlanLayers)
		},
	}
}

// runImageBuilder runs an image builder (build-image, build-layer,
// plan-layers) as runBuilder does the bundle's.
func runImageBuilder(c *cli.Context, name, key string, build func(image.Request) error) error {
	// Buffers are bounded (a few gzip blocks per layer, a few zstd frames in
	// the process, two layers at a time); the limit makes the collector work
	// harder only when the heap nears it, so that peak RSS stays under 128 MiB
	// whatever the closure without a collection cost on small heaps.
	debug.SetMemoryLimit(80 << 20)
	return runBuilder(c, name, key, buildImageDescription, func(attrs *derivation.Attrs, out string) error {
		return build(image.Request{Closure: attrs.Closure, Options: attrs.Options, Out: out, System: attrs.System, SBOM: attrs.SBOM, LayerClosure: attrs.LayerClosure})
	})
}

// withImageLayouts extends ocitools validate: a directory holding oci-layout
// is checked as an OCI image layout, anything else as a bundle.
func withImageLayouts(cmd *cli.Command) *cli.Command {
	bundleAction := cmd.Action
	cmd.Usage += ", or an OCI image layout against the image-spec schemas and its blobs"
	cmd.ArgsUsage = "BUNDLE|LAYOUT"
	cmd.Description += " A directory holding oci-layout is an OCI image layout instead: it is checked " +
		"against the image-spec JSON schemas and for what they cannot see: every blob present with " +
		"the digest and size its descriptor says, one diff_id per layer matching the uncompressed " +
		"layer, and the entrypoint (or Cmd[0]) an executable in the layers."
	cmd.Action = func(c *cli.Context) error {
		if c.NArg() == 1 && imagevalidate.IsLayout(c.Args().First()) {
			return validateImage(c, c.Args().First())
		}
		return bundleAction(c)
	}
	return cmd
}

// validateImage checks an OCI image layout (ocitools validate LAYOUT): the
// image-spec schemas, every blob's digest and size, diff_ids against the
// uncompressed layers, and the entrypoint present in the layers.
func validateImage(c *cli.Context, dir string) error {
	problems := imagevalidate.Layout(dir)
	// The SBOM beside the layout, when there is one: the CycloneDX schema.
	if _, err := sbom.ReadFile(dir); err != nil && !errors.Is(err, sbom.ErrNoSBOM) {
		problems = append(problems, err)
	}
	return reportProblems(c, dir, "valid OCI image layout", problems)
}
