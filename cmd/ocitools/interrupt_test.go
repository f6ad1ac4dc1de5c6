package main

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// Work that does not watch its context (a spinning graph walk) cannot hold
// a command past stopGrace after SIGINT: what it registered is removed and
// the command exits 128+N.
func TestRunStageForcedStop(t *testing.T) {
	removed := make(chan struct{}, 1)
	started := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		res <- runStage("test", func(ctx context.Context, st *stage) error {
			st.onForce(func() { removed <- struct{}{} })
			close(started)
			select {} // ignores ctx
		})
	}()
	<-started
	start := time.Now()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-res:
	case <-time.After(5 * time.Second):
		t.Fatal("runStage did not return 5 s after SIGINT")
	}
	if took := time.Since(start); took > stopGrace+3*time.Second { // room for a loaded machine
		t.Errorf("stopped after %s", took)
	}
	var ec cli.ExitCoder
	if !errors.As(err, &ec) || ec.ExitCode() != 130 || !strings.Contains(err.Error(), "interrupted by SIGINT") {
		t.Errorf("got %v, want exit 130 naming SIGINT", err)
	}
	select {
	case <-removed:
	default:
		t.Error("the registered removal did not run")
	}
}

// Work that watches its context returns by itself; no forced removal.
func TestRunStageCooperativeStop(t *testing.T) {
	started := make(chan struct{})
	res := make(chan error, 1)
	forced := false
	go func() {
		res <- runStage("test", func(ctx context.Context, st *stage) error {
			st.onForce(func() { forced = true })
			close(started)
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	<-started
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := <-res
	var ec cli.ExitCoder
	if !errors.As(err, &ec) || ec.ExitCode() != 143 {
		t.Errorf("got %v, want exit 143", err)
	}
	if forced {
		t.Error("a stage that returned by itself had its output removed for it")
	}
}
