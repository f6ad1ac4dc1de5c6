package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/layout"
	"github.com/ocitools/ocitools/run"
)

// runFailed is the exit status when ocitools cannot start the container, kept
// apart from the container's own statuses as docker run does.
const runFailed = 125

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a bundle with an OCI runtime, as root or rootless, without writing to it",
		ArgsUsage: "BUNDLE [-- ARGS...]",
		Description: `Runs BUNDLE (a directory holding config.json and rootfs/) with runc or crun
in a private temporary bundle: the root file system is an overlay whose
writable layer is thrown away afterwards, so the stored bundle is never
changed (root.readonly still makes the root read-only).

As a user other than root, the configuration is turned into its rootless
form: a user namespace mapping the caller to container root, /sys bound
read-only, no cgroup mounts or resource limits. Container root can then
create and remove files anywhere in a writable root but not modify files that
came from the store (their owner, host root, is not mapped). A configured user
other than root also needs newuidmap/newgidmap (package uidmap) and the
caller's ranges in /etc/subuid and /etc/subgid.

ARGS after -- replace process.args. A bundle's bin/NAME link to ocitools (what
nix run starts) runs the bundle and passes its arguments to the configured
program instead of the configured ones.

The exit status is the container's (128+N when signal N killed it); 125 means
ocitools could not start it. SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and
SIGUSR2 are forwarded; SIGKILL follows a terminating one after --grace.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "runtime", Usage: "OCI runtime name or path (default: $" + run.RuntimeEnv + ", else runc, else crun on PATH)"},
			&cli.DurationFlag{Name: "grace", Value: run.DefaultGrace, Usage: "time between a forwarded SIGINT, SIGTERM, SIGHUP or SIGQUIT and SIGKILL (0: kill at once)"},
			&cli.BoolFlag{Name: "no-terminal", Usage: "run a bundle that sets process.terminal without a terminal (for scripts)"},
			&cli.StringFlag{Name: "state-dir", Usage: "the runtime's state directory (--root) (default: /run/ocitools as root, $XDG_RUNTIME_DIR/ocitools otherwise)"},
		},
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) == 0 {
				return cli.Exit("run: no bundle given; usage: ocitools run [--runtime R] [--grace D] BUNDLE [-- ARGS...]", runFailed)
			}
			bundle, rest := args[0], args[1:]
			if len(rest) > 0 {
				if rest[0] != "--" {
					return cli.Exit(fmt.Sprintf("run: unexpected argument %q after BUNDLE: flags go before BUNDLE, the container's arguments after --", rest[0]), runFailed)
				}
				rest = rest[1:]
			}
			return runBundle(c.Context, run.Options{
				Bundle:     bundle,
				Args:       rest,
				Runtime:    c.String("runtime"),
				Grace:      grace(c),
				StateDir:   c.String("state-dir"),
				NoTerminal: c.Bool("no-terminal"),
			})
		},
	}
}

// grace reads --grace; 0 means SIGKILL at once (run.Options takes 0 as the default).
func grace(c *cli.Context) time.Duration {
	if d := c.Duration("grace"); d > 0 {
		return d
	}
	return time.Nanosecond
}

// runBundle runs a bundle with the process's own stdio and signals and turns
// the container's exit status into ours.
func runBundle(ctx context.Context, o run.Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// Subscribed before anything is created, so that a signal during set-up is
	// queued and forwarded rather than killing us before clean-up.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	o.Signals = sigs
	o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
	code, err := run.Run(ctx, o)
	if err != nil {
		return cli.Exit("run: "+err.Error(), runFailed)
	}
	if code != 0 {
		// The container already said what went wrong, if anything.
		return cli.Exit("", code)
	}
	return nil
}

// multicall handles a bundle's bin/NAME symlink to this program (what `nix run`
// starts): argv[0] is BUNDLE/bin/NAME, so it runs BUNDLE, and its arguments go
// to the configured program (process.args[0]) in place of the configured ones,
// as `nix run X -- ARGS` passes ARGS to X's program. ok is false when argv[0]
// is not such a link, and main goes on as usual.
func multicall(argv []string) (bundle string, ok bool) {
	if len(argv) == 0 || filepath.Base(argv[0]) == "ocitools" {
		return "", false
	}
	self := argv[0]
	if !strings.Contains(self, "/") {
		p, err := exec.LookPath(self)
		if err != nil {
			return "", false
		}
		self = p
	}
	// Not EvalSymlinks: the link itself says which bundle it belongs to, its
	// target is the ocitools package.
	abs, err := filepath.Abs(self)
	if err != nil {
		return "", false
	}
	binDir := filepath.Dir(abs)
	if filepath.Base(binDir) != layout.BinDir {
		return "", false
	}
	bundle = filepath.Dir(binDir)
	if _, err := os.Stat(filepath.Join(bundle, layout.ConfigFile)); err != nil {
		return "", false
	}
	return bundle, true
}

// runMulticall runs the bundle named by argv[0]; see multicall.
func runMulticall(bundle string, args []string) error {
	o := run.Options{Bundle: bundle}
	if len(args) > 0 {
		o.ProgramArgs = args
	}
	return runBundle(context.Background(), o)
}
