// Package compress turns a layer's tar stream into its blob in one pass:
// compression with pinned settings (so that the blob's digest is the same at
// any parallelism, on every machine) and both digests, the uncompressed one
// (diff_id) and the compressed one (the blob's digest).
package compress

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Algorithm is a layer compression.
type Algorithm string

// The compressions buildImage accepts.
const (
	Gzip Algorithm = "gzip"
	Zstd Algorithm = "zstd"
	None Algorithm = "none"
)

// Algorithms lists the valid values, for messages.
var Algorithms = []Algorithm{Gzip, Zstd, None}

// Pinned settings: changing any of them changes every blob digest.
const (
	// GzipLevel is klauspost's deflate level 5: 4-12 % less CPU (by host
	// CPU) than its level 6 for 0.4-0.5 points of ratio (28.5 % against
	// `gzip -6`'s 27.6 % on the Go toolchain; BENCHMARKS.md), and
	// compression is most of a build's CPU.
	GzipLevel = 5
	// GzipBlockSize is pgzip's block: the output depends on it, not on how
	// many blocks are compressed at once.
	GzipBlockSize = 1 << 20
	// ZstdFrameSize is the input of one independent zstd frame; frames are
	// compressed in parallel and written in order.
	ZstdFrameSize = 4 << 20
)

// Parse checks a compression name.
func Parse(s string) (Algorithm, error) {
	for _, a := range Algorithms {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown compression %q; valid values are \"gzip\", \"zstd\" and \"none\"", s)
}

// MediaType is the OCI layer media type for a.
func (a Algorithm) MediaType() string {
	switch a {
	case Gzip:
		return v1.MediaTypeImageLayerGzip
	case Zstd:
		return v1.MediaTypeImageLayerZstd
	default:
		return v1.MediaTypeImageLayer
	}
}

// Layer media types beside the three OCI ones that images still carry:
// Docker's, and the OCI non-distributable ones (deprecated by the image spec;
// the same formats under other names).
const (
	DockerLayerGzip       = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	DockerLayer           = "application/vnd.docker.image.rootfs.diff.tar"
	NondistributableLayer = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	NondistributableGzip  = NondistributableLayer + "+gzip"
	NondistributableZstd  = NondistributableLayer + "+zstd"
	layerTypesForMessages = v1.MediaTypeImageLayer + " (+gzip, +zstd) and Docker's " + DockerLayer + " (+.gzip)"
)

// mediaTypes is the one map from a layer media type to its compression: what
// unpack, validate and archive read.
var mediaTypes = map[string]Algorithm{
	v1.MediaTypeImageLayer:     None,
	v1.MediaTypeImageLayerGzip: Gzip,
	v1.MediaTypeImageLayerZstd: Zstd,
	DockerLayer:                None,
	DockerLayerGzip:            Gzip,
	NondistributableLayer:      None,
	NondistributableGzip:       Gzip,
	NondistributableZstd:       Zstd,
}

// FromMediaType is the compression of a layer media type.
func FromMediaType(mt string) (Algorithm, error) {
	if a, ok := mediaTypes[mt]; ok {
		return a, nil
	}
	return "", fmt.Errorf("layer media type %q is not one this tool reads (%s)", mt, layerTypesForMessages)
}

// MaxZstdWindow bounds the memory a zstd frame can make the decoder take
// (zstd --long=27 uses 128 MiB); our own frames use ZstdFrameSize.
const MaxZstdWindow = 128 << 20

// NewReader decompresses a layer blob of compression a. Close releases the
// decoder (it does not close r).
func NewReader(a Algorithm, r io.Reader) (io.ReadCloser, error) {
	switch a {
	case Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("reading the gzip stream: %w", err)
		}
		return zr, nil
	case Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(MaxZstdWindow), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("reading the zstd stream: %w", err)
		}
		return zr.IOReadCloser(), nil
	case None:
		return io.NopCloser(r), nil
	}
	return nil, fmt.Errorf("compression %q: %w", a, errUnknown)
}

// Result describes a written blob.
type Result struct {
	Digest    digest.Digest // of the compressed bytes (the blob)
	Size      int64         // of the blob
	DiffID    digest.Digest // of the uncompressed tar
	TarSize   int64
	MediaType string
}

// Workers is how many blocks (gzip) or frames (zstd) one stream compresses
// at once: every core, within a bound that keeps memory small.
func Workers() int {
	n := runtime.GOMAXPROCS(0)
	if n > 8 {
		n = 8
	}
	return n
}

// Encode runs produce, which writes an uncompressed tar stream, and writes the
// compressed form to dst, hashing both sides on the way.
func Encode(dst io.Writer, a Algorithm, produce func(io.Writer) error) (Result, error) {
	return EncodeWorkers(dst, a, Workers(), produce)
}

// EncodeWorkers is Encode with a given parallelism; the output is the same
// for any value.
func EncodeWorkers(dst io.Writer, a Algorithm, workers int, produce func(io.Writer) error) (Result, error) {
	if workers < 1 {
		workers = 1
	}
	out := &hashCounter{w: dst, h: sha256.New()}
	var comp io.WriteCloser
	switch a {
	case Gzip:
		gz, err := pgzip.NewWriterLevel(out, GzipLevel)
		if err != nil {
			return Result{}, err
		}
		if err := gz.SetConcurrency(GzipBlockSize, workers+1); err != nil {
			return Result{}, err
		}
		// A zero time would be written as a junk timestamp.
		gz.ModTime = time.Unix(0, 0)
		comp = gz
	case Zstd:
		zw, err := newZstdWriter(out, workers)
		if err != nil {
			return Result{}, err
		}
		comp = zw
	case None:
		comp = nopCloser{out}
	default:
		return Result{}, fmt.Errorf("compression %q: %w", a, errUnknown)
	}
	in := &hashCounter{w: comp, h: sha256.New()}
	if a == None {
		// The blob is the tar: hash it once.
		in = &hashCounter{w: dst, h: sha256.New()}
		out = in
	}
	// The tar writer makes many small writes; batch them for the compressor.
	bw := bufio.NewWriterSize(in, 256<<10)
	perr := produce(bw)
	if perr == nil {
		perr = bw.Flush()
	}
	cerr := comp.Close()
	if cerr != nil {
		cerr = fmt.Errorf("compressing (%s): %w", a, cerr)
	}
	// Both, when both failed: a compressor that stopped taking input makes
	// the producer fail too, and the cause is in cerr.
	if err := errors.Join(perr, cerr); err != nil {
		return Result{}, err
	}
	return Result{
		Digest:    digest.NewDigest(digest.SHA256, out.h),
		Size:      out.n,
		DiffID:    digest.NewDigest(digest.SHA256, in.h),
		TarSize:   in.n,
		MediaType: a.MediaType(),
	}, nil
}

var errUnknown = errors.New("unknown compression; valid values are \"gzip\", \"zstd\" and \"none\"")

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// hashCounter passes writes on, hashing and counting them.
type hashCounter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}
