package compress

import (
	"errors"
	"io"

	"github.com/klauspost/compress/zstd"
)

// zstdWriter cuts its input into ZstdFrameSize pieces, compresses each as an
// independent frame on its own goroutine and writes the frames in input order.
// A stream of several frames is valid zstd; because the cut points depend only
// on the input, the output is the same whatever the number of workers (the
// library's own concurrent mode splits by timing-independent but
// setting-dependent rules and ran sequentially when measured here).
type zstdWriter struct {
	dst     io.Writer
	enc     *zstd.Encoder
	buf     []byte
	pending chan chan frame // in input order, bounded: at most `workers` frames in flight
	done    chan struct{}
	err     error       // first write error, set by the writer goroutine
	free    chan []byte // input buffers, reused
	outs    chan []byte // output buffers, reused
}

type frame struct {
	data []byte
	in   []byte // returned to the pool once written
}

func newZstdWriter(dst io.Writer, workers int) (*zstdWriter, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(workers),
		zstd.WithEncoderCRC(true),
		zstd.WithZeroFrames(true),
		// A frame never refers further back than its own start.
		zstd.WithWindowSize(ZstdFrameSize),
	)
	if err != nil {
		return nil, err
	}
	z := &zstdWriter{
		dst:     dst,
		enc:     enc,
		pending: make(chan chan frame, workers),
		done:    make(chan struct{}),
		free:    make(chan []byte, workers+2),
		outs:    make(chan []byte, workers+2),
	}
	z.buf = z.getBuf()
	go z.writeLoop()
	return z, nil
}

func (z *zstdWriter) getBuf() []byte {
	select {
	case b := <-z.free:
		return b[:0]
	default:
		return make([]byte, 0, ZstdFrameSize)
	}
}

func (z *zstdWriter) writeLoop() {
	defer close(z.done)
	for ch := range z.pending {
		f := <-ch
		if z.err == nil {
			_, z.err = z.dst.Write(f.data)
		}
		select {
		case z.free <- f.in:
		default:
		}
		select {
		case z.outs <- f.data:
		default:
		}
	}
}

func (z *zstdWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		room := ZstdFrameSize - len(z.buf)
		take := len(p)
		if take > room {
			take = room
		}
		z.buf = append(z.buf, p[:take]...)
		p = p[take:]
		n += take
		if len(z.buf) == ZstdFrameSize {
			z.flushFrame()
		}
	}
	return n, nil
}

func (z *zstdWriter) flushFrame() {
	in := z.buf
	ch := make(chan frame, 1)
	z.pending <- ch // blocks when `workers` frames are in flight
	var dst []byte
	select {
	case dst = <-z.outs:
		dst = dst[:0]
	default:
	}
	go func() {
		ch <- frame{data: z.enc.EncodeAll(in, dst), in: in}
	}()
	z.buf = z.getBuf()
}

func (z *zstdWriter) Close() error {
	if len(z.buf) > 0 {
		z.flushFrame()
	}
	close(z.pending)
	<-z.done
	if err := z.enc.Close(); err != nil && z.err == nil {
		z.err = err
	}
	if z.err != nil {
		return errors.Join(errors.New("writing zstd frames"), z.err)
	}
	return nil
}
