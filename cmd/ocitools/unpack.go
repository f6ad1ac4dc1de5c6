package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/internal/partial"
	"github.com/ocitools/ocitools/registry"
	"github.com/ocitools/ocitools/run"
	"github.com/ocitools/ocitools/unpack"
)

func unpackFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "platform", Usage: "os/arch[/variant] to choose from a multi-platform image (default: this machine's)"},
		&cli.Int64Flag{Name: "max-bytes", Value: unpack.DefaultLimits.MaxBytes, Usage: "refuse an image whose layers hold more bytes uncompressed (or write more to files)"},
		&cli.Int64Flag{Name: "max-entries", Value: unpack.DefaultLimits.MaxEntries, Usage: "refuse an image whose layers hold more entries"},
	}
}

// imageFlags are unpack's flags and the registry client's, for an image
// that is a registry reference.
func imageFlags() []cli.Flag {
	return append(unpackFlags(), registryFlags()...)
}

func unpackCommand() *cli.Command {
	return &cli.Command{
		Name:      "unpack",
		Usage:     "unpack an OCI image layout into a runtime bundle",
		ArgsUsage: "IMAGE BUNDLE [-- ARGS...]",
		Description: `Unpacks IMAGE, an OCI image layout directory (DIR, or DIR:TAG to choose
by org.opencontainers.image.ref.name), into BUNDLE (config.json and rootfs/),
which must not exist. From a multi-platform index the image for this machine
(or --platform) is taken. Layers are applied in order with their whiteouts;
config.json comes from the image config (Entrypoint and Cmd, or ARGS after --;
Env, WorkingDir, User resolved in the image's /etc/passwd and /etc/group;
StopSignal and ExposedPorts as annotations) with buildContainer's defaults.

The image is untrusted: entries with absolute paths or "..", whiteouts naming
"..", hard links to what is not in the image, blobs that do not match their
digests or sizes, layers that do not match their diff_ids, and layers past
--max-bytes or --max-entries are refused; device nodes, aufs metadata and
extended attributes other than user.* (and security.capability as root) are
skipped and listed. Paths are resolved inside the rootfs, never on the host.
As root the image's owners are kept and BUNDLE is 0700; as another user the
files are the caller's. The bundle appears complete or not at all.

IMAGE may also be a registry reference REGISTRY/REPOSITORY[:TAG|@DIGEST]
(or docker://...): it is pulled as ocitools pull does (the registry flags
apply) into a temporary layout beside BUNDLE, removed afterwards.`,
		Flags: imageFlags(),
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) < 2 {
				return cli.Exit("unpack: give IMAGE (an OCI image layout directory, or DIR:TAG) and BUNDLE (a directory to create)", 2)
			}
			image, bundle, rest := args[0], args[1], args[2:]
			if len(rest) > 0 {
				if rest[0] != "--" {
					return cli.Exit(fmt.Sprintf("unpack: unexpected argument %q after BUNDLE: flags go before IMAGE, the container's arguments after --", rest[0]), 2)
				}
				rest = rest[1:]
			}
			var res *unpack.Result
			err := runStage("unpack", func(ctx context.Context, st *stage) error {
				if !unpack.IsLayout(image) && isRegistryRef(image) {
					layout, cleanup, err := pullImage(ctx, st, c, image, filepath.Dir(filepath.Clean(bundle)))
					defer cleanup()
					if err != nil {
						return cli.Exit("unpack: "+err.Error(), 1)
					}
					image = layout
				}
				o, err := unpackOptions(c, image, bundle, rest)
				if err != nil {
					return cli.Exit("unpack: "+err.Error(), 2)
				}
				if res, err = unpack.Unpack(ctx, o); err != nil {
					return cli.Exit("unpack: "+err.Error(), 1)
				}
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: %s, %s, %d bytes written (image %s)\n",
				bundle, count(res.Layers, "layer"), count(int(res.Entries), "entry"), res.Written, res.Image.ManifestDesc.Digest)
			return nil
		},
	}
}

func unpackOptions(c *cli.Context, image, bundle string, args []string) (unpack.Options, error) {
	o := unpack.Options{
		Image:  image,
		Bundle: bundle,
		Args:   args,
		Limits: unpack.Limits{MaxBytes: c.Int64("max-bytes"), MaxEntries: c.Int64("max-entries")},
		Log:    c.App.ErrWriter,
	}
	if o.Limits.MaxBytes <= 0 || o.Limits.MaxEntries <= 0 {
		return o, fmt.Errorf("--max-bytes and --max-entries must be positive")
	}
	if !unpack.IsLayout(image) {
		return o, fmt.Errorf("%s is not an OCI image layout directory (one holding oci-layout), nor a registry reference REGISTRY/REPOSITORY[:TAG]", image)
	}
	if p := c.String("platform"); p != "" {
		plat, err := unpack.ParsePlatform(p)
		if err != nil {
			return o, err
		}
		o.Platform = plat
	}
	return o, nil
}

// withImages lets `ocitools run` take an image (a layout, or a registry
// reference) where it takes a bundle: the image is
// unpacked into a temporary bundle, which the command's own action runs, and
// removed afterwards. Kept apart from run.go, which knows only bundles.
func withImages(cmd *cli.Command) *cli.Command {
	cmd.Flags = append(cmd.Flags, imageFlags()...)
	cmd.ArgsUsage = "BUNDLE|IMAGE [-- ARGS...]"
	cmd.Description += `

IMAGE, an OCI image layout directory (DIR or DIR:TAG) or a registry
reference REGISTRY/REPOSITORY[:TAG], is first unpacked into a temporary
bundle as ocitools unpack does (its flags apply), which is removed
afterwards.`
	inner := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		args := c.Args().Slice()
		if len(args) == 0 || !isImageArg(args[0]) {
			return inner(c)
		}
		image, rest := args[0], args[1:]
		if len(rest) > 0 && rest[0] != "--" {
			return inner(c) // it says what is wrong with the arguments
		}
		if len(rest) > 0 {
			rest = rest[1:]
		}
		// A partial output (internal/partial) in TMPDIR: what a run
		// killed with SIGKILL left is reclaimed by the next one.
		part, err := partial.Create(filepath.Join(os.TempDir(), "ocitools-image"), partialInfix, "run", unpack.RemoveTree, c.App.ErrWriter)
		if err != nil {
			return cli.Exit("run: "+err.Error(), runFailed)
		}
		defer part.Release()
		tmp := part.Path
		if err := os.Mkdir(tmp, 0o700); err != nil {
			return cli.Exit("run: "+err.Error(), runFailed)
		}
		defer func() { _ = unpack.RemoveTree(tmp) }()
		// Rootless with subordinate ids, the image is unpacked in a user
		// namespace (unpackInUserNS); what it leaves is removed in one too,
		// before tmp is (the defers run in reverse).
		var ns *idMaps
		if uidMap, gidMap, ok := run.SubordinateMaps(); ok {
			ns = &idMaps{uidMap, gidMap}
		}
		var bundle string
		defer func() {
			if ns != nil && bundle != "" {
				if err := run.RemoveInUserNS(bundle, ns.uid, ns.gid); err != nil {
					fmt.Fprintf(c.App.ErrWriter, "ocitools run: removing the unpacked image: %v\n", err)
				}
			}
		}()
		err = runStage("run", func(ctx context.Context, st *stage) error {
			st.onForce(func() { _ = unpack.RemoveTree(tmp) })
			// Local: after a forced stop this may still run, and the
			// caller's variables are no longer its to write.
			b, err := unpackTemp(ctx, st, c, image, tmp, rest, ns)
			if err == nil {
				bundle = b
			}
			return err
		})
		if err != nil {
			return err
		}
		nc, err := withArgs(c, append([]string{bundle, "--"}, rest...))
		if err != nil {
			return cli.Exit("run: "+err.Error(), runFailed)
		}
		return inner(nc)
	}
	return cmd
}

func isImageArg(s string) bool {
	return unpack.IsLayout(s) || isRegistryRef(s)
}

// idMaps are a user namespace's mappings (run.SubordinateMaps).
type idMaps struct{ uid, gid []specs.LinuxIDMapping }

// unpackTemp unpacks image into a bundle in tmp: in this process, or, with
// ns, as `ocitools unpack` run as root of a user namespace with those
// mappings (the caller as 0, its subordinate ids from 1: the ones the
// rootless run uses), so that the image's owners (a service user's data
// directory) are kept, as root's unpack keeps them, where the caller's own
// unpack could only leave every file its own. That bundle's name starts with
// run.PrivatePrefix, so that run.RemoveInUserNS may remove it.
func unpackTemp(ctx context.Context, st *stage, c *cli.Context, image, tmp string, args []string, ns *idMaps) (string, error) {
	bundle := filepath.Join(tmp, "bundle")
	if ns != nil {
		bundle = filepath.Join(tmp, run.PrivatePrefix+"image")
	}
	if !unpack.IsLayout(image) {
		layout, cleanup, err := pullImage(ctx, st, c, image, tmp)
		defer cleanup()
		if err != nil {
			return "", cli.Exit("run: "+err.Error(), runFailed)
		}
		image = layout
	}
	o, err := unpackOptions(c, image, bundle, args)
	if err != nil {
		return "", cli.Exit("run: "+err.Error(), runFailed)
	}
	if ns != nil {
		return bundle, unpackInUserNS(ctx, c, image, bundle, args, ns)
	}
	if _, err = unpack.Unpack(ctx, o); err != nil {
		return "", cli.Exit("run: unpacking "+image+": "+err.Error(), runFailed)
	}
	return bundle, nil
}

// unpackInUserNS runs `ocitools unpack` with c's flags in a user namespace
// with ns's mappings (see unpackTemp).
func unpackInUserNS(ctx context.Context, c *cli.Context, image, bundle string, args []string, ns *idMaps) error {
	self, err := os.Executable()
	if err != nil {
		return cli.Exit("run: "+err.Error(), runFailed)
	}
	argv := []string{"unpack", "--max-bytes", strconv.FormatInt(c.Int64("max-bytes"), 10), "--max-entries", strconv.FormatInt(c.Int64("max-entries"), 10)}
	if p := c.String("platform"); p != "" {
		argv = append(argv, "--platform", p)
	}
	argv = append(argv, image, bundle)
	if len(args) > 0 {
		argv = append(append(argv, "--"), args...)
	}
	cmd := exec.Command(self, argv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &out
	if err := run.StartInUserNS(cmd, ns.uid, ns.gid); err != nil {
		return cli.Exit("run: unpacking "+image+" in a user namespace: "+err.Error(), runFailed)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return ctx.Err()
	}
	if err != nil {
		return cli.Exit("run: unpacking "+image+": "+strings.TrimSpace(strings.TrimPrefix(out.String(), "unpack: ")), runFailed)
	}
	// What it reported besides (owners outside the mappings, ...).
	_, _ = c.App.ErrWriter.Write(out.Bytes())
	return nil
}

// withArgs is c with other positional arguments and the same flag values.
func withArgs(c *cli.Context, args []string) (*cli.Context, error) {
	fs := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
	for _, f := range c.Command.Flags {
		if err := f.Apply(fs); err != nil {
			return nil, err
		}
	}
	for _, name := range c.LocalFlagNames() {
		if err := fs.Set(name, fmt.Sprint(c.Value(name))); err != nil {
			return nil, fmt.Errorf("flag --%s: %w", name, err)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var parent *cli.Context
	if l := c.Lineage(); len(l) > 1 {
		parent = l[1]
	}
	nc := cli.NewContext(c.App, fs, parent)
	nc.Command = c.Command
	nc.Context = c.Context
	return nc, nil
}

// isRegistryRef tells whether s names a registry image rather than a path:
// docker://..., or REGISTRY/... whose first component is a host (it holds a
// "." or a ":", or is localhost) and no such path exists here.
func isRegistryRef(s string) bool {
	if strings.HasPrefix(s, "docker://") {
		return true
	}
	if _, err := os.Lstat(s); err == nil {
		return false
	}
	first, _, found := strings.Cut(s, "/")
	if !found || first == "" || strings.HasPrefix(first, ".") {
		return false // "/abs", "./rel", "../rel"
	}
	return strings.ContainsAny(first, ".:") || first == "localhost"
}

// pullImage fetches a registry image into a new layout in a temporary
// directory under parent with the registry client, as ocitools pull does,
// without progress (standard error may be the container's); the summary goes
// to the app's error writer. cleanup removes the layout.
func pullImage(ctx context.Context, st *stage, c *cli.Context, image, parent string) (string, func(), error) {
	nothing := func() {}
	ref, err := registry.ParseRef(image)
	if err != nil {
		return "", nothing, err
	}
	// A partial output (internal/partial): what SIGKILL left beside the
	// bundle is reclaimed by the next unpack there.
	part, err := partial.Create(filepath.Join(parent, "ocitools-pull"), partialInfix, "unpack", os.RemoveAll, c.App.ErrWriter)
	if err != nil {
		return "", nothing, fmt.Errorf("pulling %s: %w", image, err)
	}
	tmp := part.Path
	cleanup := func() {
		_ = os.RemoveAll(tmp)
		part.Release()
	}
	st.onForce(cleanup)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		cleanup()
		return "", nothing, fmt.Errorf("pulling %s: %w", image, err)
	}
	layout := filepath.Join(tmp, "layout")
	// One platform only: the one unpack will take (--platform or this machine's).
	plat, err := platformOf(c, true)
	if err != nil {
		cleanup()
		return "", nothing, err
	}
	o, pctx, cancel := registryOptions(ctx, c, false)
	defer cancel()
	o.Platform = plat
	s, err := registry.Pull(pctx, ref, layout, o)
	if err != nil {
		cleanup()
		return "", nothing, fmt.Errorf("pulling %s: %w", image, err)
	}
	fmt.Fprintln(c.App.ErrWriter, s.Summary("pulled"))
	return layout, cleanup, nil
}

// count is "1 layer", "2 layers", "3 entries".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		noun = strings.TrimSuffix(noun, "y") + "ie"
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
