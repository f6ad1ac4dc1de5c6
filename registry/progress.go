package registry

import (
	"fmt"
	"io"
	"os"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sys/unix"

	"github.com/ocitools/ocitools/internal/escape"
)

// Progress receives what push and pull do to each blob. Implementations
// must be safe for concurrent use.
type Progress interface {
	// Start: a transfer of desc begins (verb: "sending", "fetching").
	Start(desc ocispec.Descriptor, verb string)
	// Add: n more bytes of desc moved.
	Add(desc ocispec.Descriptor, n int)
	// Retry: the transfer failed and starts over (its count is reset).
	Retry(desc ocispec.Descriptor, err error)
	// Done: desc is finished, how ("sent", "exists", "mounted from R", "fetched").
	Done(desc ocispec.Descriptor, how string)
	// Close ends the display; nothing is called after it.
	Close()
}

// NewProgress gives one bar per blob when w is a terminal, plain lines
// otherwise.
func NewProgress(w *os.File) Progress {
	// A terminal of unknown size (0x0, as some pseudo-terminals start) would
	// show no bar at all: lines then.
	if ws, err := unix.IoctlGetWinsize(int(w.Fd()), unix.TIOCGWINSZ); err == nil && ws.Row > 0 && ws.Col > 0 {
		return newBars(w)
	}
	return &lines{w: w}
}

func short(desc ocispec.Descriptor) string {
	s := desc.Digest.String()
	if len(s) > 19 {
		s = s[:19]
	}
	return s
}

// HumanBytes formats a byte count for people.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// lines prints one line per finished blob (logs, CI, pipes).
type lines struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lines) Start(ocispec.Descriptor, string) {}
func (l *lines) Add(ocispec.Descriptor, int)      {}
func (l *lines) Retry(d ocispec.Descriptor, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s retrying: %s\n", short(d), escape.Line(err.Error()))
}
func (l *lines) Done(d ocispec.Descriptor, how string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s %10s %s\n", short(d), HumanBytes(d.Size), how)
}
func (l *lines) Close() {}

// bars draws one mpb bar per blob in transfer.
type bars struct {
	p      *mpb.Progress
	mu     sync.Mutex
	bars   map[string]*mpb.Bar
	smu    sync.Mutex        // guards status only: decorators take it while mpb renders
	status map[string]string // what each bar says: sending, sent, exists, ...
	w      io.Writer
}

func newBars(w io.Writer) *bars {
	return &bars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40)), bars: map[string]*mpb.Bar{}, status: map[string]string{}, w: w}
}

func (b *bars) setStatus(d ocispec.Descriptor, s string) {
	b.smu.Lock()
	b.status[d.Digest.String()] = s
	b.smu.Unlock()
}

func (b *bars) bar(d ocispec.Descriptor, verb string) *mpb.Bar {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bar, ok := b.bars[d.Digest.String()]; ok {
		return bar
	}
	if verb == "" {
		return nil
	}
	key := d.Digest.String()
	b.setStatus(d, verb)
	status := func(decor.Statistics) string {
		b.smu.Lock()
		defer b.smu.Unlock()
		return b.status[key]
	}
	// Created without a total (so it cannot complete by itself when the
	// last byte moves), then given one for display; Done completes it.
	bar := b.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(short(d)+" "), decor.Any(status, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")),
	)
	bar.SetTotal(d.Size, false)
	b.bars[d.Digest.String()] = bar
	return bar
}

func (b *bars) Start(d ocispec.Descriptor, verb string) { b.bar(d, verb) }
func (b *bars) Add(d ocispec.Descriptor, n int) {
	if bar := b.bar(d, ""); bar != nil {
		bar.IncrBy(n)
	}
}
func (b *bars) Retry(d ocispec.Descriptor, err error) {
	if bar := b.bar(d, ""); bar != nil {
		bar.SetCurrent(0)
	}
	fmt.Fprintf(b.p, "%s retrying: %s\n", short(d), escape.Line(err.Error()))
}
func (b *bars) Done(d ocispec.Descriptor, how string) {
	// A blob that needed no transfer gets a full bar saying why.
	b.setStatus(d, how) // before completion: the final render shows it
	bar := b.bar(d, how)
	bar.SetTotal(d.Size, true)
}
func (b *bars) Close() {
	b.mu.Lock()
	all := make([]*mpb.Bar, 0, len(b.bars))
	for _, bar := range b.bars {
		all = append(all, bar)
	}
	b.mu.Unlock()
	for _, bar := range all {
		if !bar.Completed() {
			bar.Abort(false)
		}
	}
	b.p.Wait()
}

// progress is o.Progress, or one that shows nothing.
func (o Options) progress() Progress {
	if o.Progress == nil {
		return nopProgress{}
	}
	return o.Progress
}

// nopProgress is used when the caller gives none.
type nopProgress struct{}

func (nopProgress) Start(ocispec.Descriptor, string) {}
func (nopProgress) Add(ocispec.Descriptor, int)      {}
func (nopProgress) Retry(ocispec.Descriptor, error)  {}
func (nopProgress) Done(ocispec.Descriptor, string)  {}
func (nopProgress) Close()                           {}
