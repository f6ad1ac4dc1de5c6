package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

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

// stopGrace is how long a stage has, after SIGINT, SIGTERM or SIGHUP ended
// its context, to return by itself (removing what it wrote) before what it
// registered is removed for it and the command exits: work that does not
// watch its context (walking a hostile image graph) cannot hold the
// command past it.
const stopGrace = 500 * time.Millisecond

// stage is a command's work under signals.
type stage struct {
	mu    sync.Mutex
	force []func()
}

// onForce registers a removal for a stop the work did not make by itself.
func (s *stage) onForce(f func()) {
	s.mu.Lock()
	s.force = append(s.force, f)
	s.mu.Unlock()
}

// runStage runs op with a context that SIGINT, SIGTERM and SIGHUP end. After
// such a signal it returns an exit 128+N once op has returned or stopGrace
// has passed (then the removals op registered run). name prefixes the
// message.
func runStage(name string, op func(ctx context.Context, s *stage) error) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := &stage{}
	done := make(chan error, 1)
	go func() { done <- op(ctx, st) }()
	select {
	case err := <-done:
		return err
	case sig := <-sigs:
		cancel()
		t := time.NewTimer(stopGrace)
		defer t.Stop()
		select {
		case err := <-done:
			if err == nil {
				return nil // it had finished
			}
		case <-t.C:
			st.mu.Lock()
			for _, f := range st.force {
				f()
			}
			st.mu.Unlock()
		}
		n := sig.(syscall.Signal)
		return cli.Exit(fmt.Sprintf("%s: interrupted by %s; nothing half-written was left", name, unix.SignalName(n)), 128+int(n))
	}
}
