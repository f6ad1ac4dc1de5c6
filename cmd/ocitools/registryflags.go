package main

import (
	"context"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/registry"
)

// registryFlags are the registry client's flags, one set for every command
// that talks to a registry: push, pull, and unpack and run given a registry
// reference.
func registryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "creds", Usage: "USER:PASSWORD for the registry (else the auth files are read)"},
		&cli.StringFlag{Name: "authfile", Usage: "read credentials from this file only (docker config.json / podman auth.json format)"},
		&cli.StringFlag{Name: "ca", Usage: "PEM file of a CA to trust besides the system roots"},
		&cli.BoolFlag{Name: "plain-http", Usage: "speak plain HTTP to the registry (a localhost registry falls back to it by itself)"},
		&cli.IntFlag{Name: "jobs", Value: 4, Usage: "blobs transferred at once"},
		&cli.DurationFlag{Name: "timeout", Value: time.Hour, Usage: "give up on the registry after this long in all"},
		&cli.DurationFlag{Name: "stall-timeout", Value: 2 * time.Minute, Usage: "give up on a transfer that moves no byte for this long"},
		&cli.DurationFlag{Name: "response-timeout", Value: 2 * time.Minute, Usage: "give up on a request whose answer's headers have not come after this long (not retried)"},
	}
}

// transferFlags are push's and pull's own: their standard error shows the
// transfer, while unpack and run keep it for the container.
func transferFlags() []cli.Flag {
	return append(registryFlags(),
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no per-blob progress, only the summary"})
}

// registryOptions reads registryFlags; per-blob progress goes to standard
// error when progress is set. The context ends at --timeout or with parent.
func registryOptions(parent context.Context, c *cli.Context, progress bool) (registry.Options, context.Context, context.CancelFunc) {
	o := registry.Options{
		Creds:     c.String("creds"),
		AuthFile:  c.String("authfile"),
		CAFile:    c.String("ca"),
		PlainHTTP: c.Bool("plain-http"),
		Jobs:      c.Int("jobs"),
		Stall:     c.Duration("stall-timeout"),
		Headers:   c.Duration("response-timeout"),
		Cache:     os.Getenv("OCITOOLS_BLOB_CACHE"),
	}
	if progress {
		o.Progress = registry.NewProgress(os.Stderr)
	}
	// The cause names --timeout in the error when it fires.
	ctx, cancel := context.WithTimeoutCause(parent, c.Duration("timeout"), registry.CommandDeadline(c.Duration("timeout")))
	return o, ctx, cancel
}
