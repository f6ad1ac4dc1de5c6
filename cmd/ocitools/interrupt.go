package main

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/rootfs"
)

// buildOrRemove runs build, which writes the partial output tmp, and returns
// its error. A signal on sigs first removes tmp, again and again until build
// returns (removing its output under it makes its next write fail, and it
// stops) or 10 s have passed, and then exits 128+signal saying whether the
// partial output is gone. name prefixes the message. The bundle and image
// builders share it: neither has cancellation.
func buildOrRemove(name, tmp string, sigs <-chan os.Signal, build func() error) error {
	done := make(chan error, 1)
	go func() { done <- build() }()
	select {
	case err := <-done:
		return err
	case sig := <-sigs:
		deadline := time.After(10 * time.Second)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
	wait:
		for {
			_ = rootfs.RemoveAll(tmp)
			select {
			case <-done:
				break wait
			case <-deadline:
				break wait
			case <-tick.C:
			}
		}
		code := 128 + int(sig.(syscall.Signal))
		if err := rootfs.RemoveAll(tmp); err != nil {
			return cli.Exit(fmt.Sprintf("%s: interrupted by %v; removing the partial output %s: %v", name, sig, tmp, err), code)
		}
		return cli.Exit(fmt.Sprintf("%s: interrupted by %v; the partial output was removed", name, sig), code)
	}
}
