package layout

import (
	"os"
	"sync"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// A BlobSource gives blobs a layout does not hold as files: a streamed
// image's layers (image/stream), made again from the store when read.
type BlobSource interface {
	// OpenBlob returns a file holding exactly the bytes of d, already
	// checked against its digest, or ok false when the source does not know
	// d. An error means the source knows d but could not produce it.
	OpenBlob(d v1.Descriptor) (f *os.File, ok bool, err error)
}

// A SourceOpener finds the source of the layout in dir: nil (and no error)
// when dir has nothing for it.
type SourceOpener func(dir string) (BlobSource, error)

var (
	sourcesMu sync.Mutex
	openers   []SourceOpener
)

// RegisterSource adds a kind of blob source. Every Reader consults the
// registered sources, in order, for a blob that is not in blobs/.
func RegisterSource(o SourceOpener) {
	sourcesMu.Lock()
	defer sourcesMu.Unlock()
	openers = append(openers, o)
}

// fromSources asks the registered sources for a blob missing from blobs/.
func (r *Reader) fromSources(d v1.Descriptor) (*os.File, bool, error) {
	sourcesMu.Lock()
	list := append([]SourceOpener(nil), openers...)
	sourcesMu.Unlock()
	for _, open := range list {
		src, err := open(r.Dir)
		if err != nil {
			return nil, false, err
		}
		if src == nil {
			continue
		}
		if f, ok, err := src.OpenBlob(d); ok || err != nil {
			return f, ok, err
		}
	}
	return nil, false, nil
}
