package compress

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// MaxFramesInFlight bounds the zstd frames held in memory by the whole
// process (every layer written at once shares it): each holds up to
// ZstdFrameSize of input and about half as much output.
//
// maxZstdEncoders bounds the encoder states (about 5 MiB each with these
// settings, measured): more cores than that do not make zstd faster here,
// where reading the store is the bound.
const maxZstdEncoders = 4
const MaxFramesInFlight = 4

var (
	zstdOnce   sync.Once
	zstdEnc    *zstd.Encoder
	zstdErr    error
	frameSlots = make(chan struct{}, MaxFramesInFlight)
	// Free lists rather than sync.Pools: a pool keeps what it held through
	// one more collection, which doubled the buffers' share of peak memory.
	inBufs  = make(chan *[]byte, MaxFramesInFlight+2)
	outBufs = make(chan *[]byte, MaxFramesInFlight)
)

func getBuf(free chan *[]byte, size int) *[]byte {
	select {
	case b := <-free:
		*b = (*b)[:0]
		return b
	default:
		b := make([]byte, 0, size)
		return &b
	}
}

func putBuf(free chan *[]byte, b *[]byte) {
	select {
	case free <- b:
	default:
	}
}

// encoder is the one zstd encoder of the process: EncodeAll is safe for
// concurrent use and keeps at most maxZstdEncoders encoder states, however many
// layers are written at once. Its settings are pinned: they decide the bytes.
func encoder() (*zstd.Encoder, error) {
	zstdOnce.Do(func() {
		zstdEnc, zstdErr = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(min(Workers(), maxZstdEncoders)),
			zstd.WithEncoderCRC(true),
			zstd.WithZeroFrames(true),
			// A frame never refers further back than its own start.
			zstd.WithWindowSize(ZstdFrameSize),
			zstd.WithLowerEncoderMem(true),
		)
	})
	return zstdEnc, zstdErr
}

// zstdWriter cuts its input into ZstdFrameSize pieces, compresses each as an
// independent frame on its own goroutine and writes the frames in input order.
// A stream of several frames is valid zstd; because the cut points depend only
// on the input, the output is the same whatever the number of workers (the
// library's own concurrent stream encoder ran sequentially when measured here).
type zstdWriter struct {
	dst     io.Writer
	enc     *zstd.Encoder
	buf     *[]byte
	pending chan chan frame // in input order; its capacity bounds this writer's frames in flight
	done    chan struct{}
	err     error // first write error, set by the writer goroutine
	failed  atomic.Bool
}

type frame struct {
	data, in *[]byte
}

func newZstdWriter(dst io.Writer, workers int) (*zstdWriter, error) {
	enc, err := encoder()
	if err != nil {
		return nil, err
	}
	z := &zstdWriter{
		dst:     dst,
		enc:     enc,
		pending: make(chan chan frame, workers),
		done:    make(chan struct{}),
	}
	z.buf = newInBuf()
	go z.writeLoop()
	return z, nil
}

func newInBuf() *[]byte { return getBuf(inBufs, ZstdFrameSize) }

func (z *zstdWriter) writeLoop() {
	defer close(z.done)
	for ch := range z.pending {
		f := <-ch
		if z.err == nil {
			if _, z.err = z.dst.Write(*f.data); z.err != nil {
				z.failed.Store(true)
			}
		}
		putBuf(inBufs, f.in)
		putBuf(outBufs, f.data)
		<-frameSlots
	}
}

func (z *zstdWriter) Write(p []byte) (int, error) {
	if z.failed.Load() {
		// The destination failed: stop compressing; Close reports why.
		return 0, errors.New("zstd: the destination failed")
	}
	n := 0
	for len(p) > 0 {
		b := *z.buf
		take := min(len(p), ZstdFrameSize-len(b))
		*z.buf = append(b, p[:take]...)
		p = p[take:]
		n += take
		if len(*z.buf) == ZstdFrameSize {
			z.flushFrame()
		}
	}
	return n, nil
}

func (z *zstdWriter) flushFrame() {
	in := z.buf
	ch := make(chan frame, 1)
	frameSlots <- struct{}{} // released by writeLoop once the frame is written
	z.pending <- ch
	out := getBuf(outBufs, ZstdFrameSize/2)
	go func() {
		*out = z.enc.EncodeAll(*in, (*out)[:0])
		ch <- frame{data: out, in: in}
	}()
	z.buf = newInBuf()
}

func (z *zstdWriter) Close() error {
	if len(*z.buf) > 0 {
		z.flushFrame()
	} else {
		putBuf(inBufs, z.buf)
	}
	close(z.pending)
	<-z.done
	if z.err != nil {
		return errors.Join(errors.New("writing zstd frames"), z.err)
	}
	return nil
}
