package unpack

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type compression int

const (
	compNone compression = iota
	compGzip
	compZstd
)

// Non-distributable layers: deprecated by the image spec, still found in
// images; the same formats under other names.
const (
	foreignLayer     = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	foreignLayerGzip = foreignLayer + "+gzip"
	foreignLayerZstd = foreignLayer + "+zstd"
)

// layerCompression maps a layer media type to its compression.
func layerCompression(mt string) (compression, error) {
	switch mt {
	case ocispec.MediaTypeImageLayer, dockerLayerTar, foreignLayer:
		return compNone, nil
	case ocispec.MediaTypeImageLayerGzip, dockerLayerGzip, foreignLayerGzip:
		return compGzip, nil
	case ocispec.MediaTypeImageLayerZstd, foreignLayerZstd:
		return compZstd, nil
	}
	return 0, fmt.Errorf("layer media type %q is not one this tool reads (%s, +gzip or +zstd)", mt, ocispec.MediaTypeImageLayer)
}

// maxZstdWindow bounds the memory a zstd frame can ask the decoder for
// (zstd --long=27 uses 128 MiB).
const maxZstdWindow = 128 << 20

// decompress returns the uncompressed stream of a layer and a function that
// releases the decoder.
func decompress(c compression, r io.Reader) (io.Reader, func(), error) {
	switch c {
	case compGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the gzip stream: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case compZstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, nil, fmt.Errorf("reading the zstd stream: %w", err)
		}
		return zr, zr.Close, nil
	}
	return r, func() {}, nil
}
