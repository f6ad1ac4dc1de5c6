package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// The deadlines of a registry client, each named when it fires: a bare
// "context deadline exceeded" does not say which wait was too long, nor
// which flag changes it.
const (
	defaultConnect  = 15 * time.Second // TCP connect, and the TLS handshake
	defaultHeaders  = 2 * time.Minute  // a registry may hash a large blob before answering
	defaultStall    = 2 * time.Minute
	defaultAttempts = 4
)

// DeadlineError says which deadline fired. A deadline is final: the wait
// was already as long as documented, and trying again would multiply it.
type DeadlineError struct {
	// What waited: "connect", "TLS handshake", "response headers",
	// "stall", "manifest", "whole command".
	What string
	// After is the deadline's length; Flag the option that sets it, if any.
	After time.Duration
	Flag  string
	Err   error
}

func (e *DeadlineError) Error() string {
	s := fmt.Sprintf("the %s deadline (%s) passed", e.What, e.After)
	if e.Flag != "" {
		s += " (" + e.Flag + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *DeadlineError) Unwrap() error { return e.Err }

// CommandDeadline is the cause a command gives its context when its whole
// --timeout passes (context.WithTimeoutCause), so that the error names it.
func CommandDeadline(d time.Duration) error {
	return &DeadlineError{What: "whole command", After: d, Flag: "--timeout"}
}

// nameDeadline turns a timeout in err into a DeadlineError naming which
// deadline fired; other errors are returned as they are. ctx is the
// operation's context (its cause names a command or manifest deadline).
func (o *Options) nameDeadline(ctx context.Context, err error) error {
	var de *DeadlineError
	var nerr net.Error
	var oerr *net.OpError
	switch {
	case err == nil || errors.As(err, &de):
		return err
	case ctx.Err() != nil && errors.As(context.Cause(ctx), &de):
		return &DeadlineError{What: de.What, After: de.After, Flag: de.Flag, Err: err}
	case errors.Is(err, errStalled):
		return &DeadlineError{What: "stall", After: o.stall(), Flag: "--stall-timeout", Err: err}
	case strings.Contains(err.Error(), "timeout awaiting response headers"):
		return &DeadlineError{What: "response headers", After: o.headers(), Flag: "--response-timeout", Err: err}
	case strings.Contains(err.Error(), "TLS handshake timeout"):
		return &DeadlineError{What: "TLS handshake", After: defaultConnect, Err: err}
	case errors.As(err, &oerr) && oerr.Op == "dial" && oerr.Timeout():
		return &DeadlineError{What: "connect", After: defaultConnect, Err: err}
	case errors.As(err, &nerr) && nerr.Timeout():
		return &DeadlineError{What: "network", After: defaultConnect, Err: err}
	}
	return err
}

// withTimeout is context.WithTimeoutCause with a DeadlineError as the cause.
func withTimeout(ctx context.Context, d time.Duration, what, flag string) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, &DeadlineError{What: what, After: d, Flag: flag})
}
