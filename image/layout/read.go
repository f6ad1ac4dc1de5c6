package layout

import (
	// Registers the digest algorithms go-digest verifies.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/ocitools/ocitools/internal/readfile"
)

// MaxIndexSize bounds index.json: it is an index like any other.
const MaxIndexSize = MaxManifestSize

// Reader reads an OCI image layout directory that may come from someone
// else: the oci-layout and index.json files and every blob are opened only as
// regular files (a FIFO does not block the open, a device is refused), read
// up to a bound or their declared size, and blobs are checked against their
// digests. Blobs may be symlinks (layouts in the Nix store link to layer and
// image outputs): the digest check is what makes their content trusted. The
// push, pull, unpack and archive commands read layouts through it.
type Reader struct {
	Dir string
}

// Open checks that dir is an OCI image layout: it holds an oci-layout file
// with the version this package reads.
func Open(dir string) (*Reader, error) {
	p := filepath.Join(dir, v1.ImageLayoutFile)
	data, err := readfile.Following(p, 4096)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not an OCI image layout: it has no %s file", dir, v1.ImageLayoutFile)
		}
		return nil, fmt.Errorf("%s is not an OCI image layout: %w", dir, err)
	}
	var l v1.ImageLayout
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", p, err)
	}
	if l.Version != v1.ImageLayoutVersion {
		return nil, fmt.Errorf("%s: imageLayoutVersion %q is not %q, the one this tool reads", p, l.Version, v1.ImageLayoutVersion)
	}
	return &Reader{Dir: dir}, nil
}

// Index reads index.json, at most MaxIndexSize bytes, with valid descriptor
// digests and sizes.
func (r *Reader) Index() (*v1.Index, error) {
	p := filepath.Join(r.Dir, v1.ImageIndexFile)
	data, err := readfile.Following(p, MaxIndexSize)
	if err != nil {
		return nil, err
	}
	var idx v1.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", p, err)
	}
	for i, d := range idx.Manifests {
		if err := CheckDescriptor(d); err != nil {
			return nil, fmt.Errorf("%s: manifests[%d]: %w", p, i, err)
		}
	}
	return &idx, nil
}

// CheckDescriptor refuses a descriptor whose digest is not valid (so that it
// cannot name a path outside blobs/) or whose size is negative.
func CheckDescriptor(d v1.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d.Digest, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("descriptor %s: negative size %d", d.Digest, d.Size)
	}
	return nil
}

// BlobPath is where the layout keeps a blob. The digest is validated first,
// so its parts are an algorithm name and hex digits: no path separators.
func (r *Reader) BlobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("invalid digest %q: %w", d, err)
	}
	return filepath.Join(r.Dir, v1.ImageBlobsDir, d.Algorithm().String(), d.Encoded()), nil
}

// OpenBlob opens the blob d names, a regular file of exactly d.Size bytes.
// Its content is not checked: read it through Verify, or with ReadBlob.
func (r *Reader) OpenBlob(d v1.Descriptor) (*os.File, error) {
	if err := CheckDescriptor(d); err != nil {
		return nil, err
	}
	p, err := r.BlobPath(d.Digest)
	if err != nil {
		return nil, err
	}
	f, err := openRegular(p)
	if errors.Is(err, os.ErrNotExist) {
		// Not a file: a streamed image makes it again (BlobSource).
		sf, ok, serr := r.fromSources(d)
		switch {
		case serr != nil:
			return nil, fmt.Errorf("blob %s of %s: %w", d.Digest, r.Dir, serr)
		case ok:
			f, err = sf, nil
		}
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("blob %s is missing from %s", d.Digest, r.Dir)
		}
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if fi.Size() != d.Size {
		f.Close()
		return nil, fmt.Errorf("blob %s in %s is %d bytes, its descriptor declares %d: the layout is damaged or tampered with", d.Digest, r.Dir, fi.Size(), d.Size)
	}
	return f, nil
}

// ReadBlob reads a small blob whole (a manifest, an index, a config): at most
// limit bytes, checked against its size and digest.
func (r *Reader) ReadBlob(d v1.Descriptor, limit int64) ([]byte, error) {
	if d.Size > limit {
		return nil, fmt.Errorf("blob %s declares %d bytes, more than the %d allowed for a manifest or config", d.Digest, d.Size, limit)
	}
	v, err := r.OpenVerified(d)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	data, err := io.ReadAll(v)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if err := v.Verify(); err != nil {
		return nil, err
	}
	return data, nil
}

// OpenVerified opens a blob for reading: the reader gives at most d.Size
// bytes, and Verify, after reading, checks that they were exactly d.Size and
// match the digest.
func (r *Reader) OpenVerified(d v1.Descriptor) (*VerifiedReader, error) {
	f, err := r.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	return &VerifiedReader{f: f, r: io.LimitReader(f, d.Size), v: d.Digest.Verifier(), desc: d, dir: r.Dir}, nil
}

// VerifiedReader reads a blob and checks it when done.
type VerifiedReader struct {
	f    *os.File
	r    io.Reader
	v    digest.Verifier
	n    int64
	desc v1.Descriptor
	dir  string
}

func (v *VerifiedReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	_, _ = v.v.Write(p[:n])
	return n, err
}

// Verify reads what is left (a decompressor may stop before the end) and
// checks size and digest.
func (v *VerifiedReader) Verify() error {
	if _, err := io.Copy(io.Discard, v); err != nil {
		return fmt.Errorf("blob %s: %w", v.desc.Digest, err)
	}
	if v.n != v.desc.Size {
		return fmt.Errorf("blob %s in %s: read %d bytes, its descriptor declares %d: the layout is damaged or tampered with", v.desc.Digest, v.dir, v.n, v.desc.Size)
	}
	if !v.v.Verified() {
		return fmt.Errorf("blob %s in %s does not match its digest: the layout is damaged or tampered with", v.desc.Digest, v.dir)
	}
	return nil
}

// Rewind starts reading the blob again from its first byte, from the same
// open file: what a first pass verified is what the second reads (and
// checks again), and a blob a BlobSource made is made once.
func (v *VerifiedReader) Rewind() error {
	if _, err := v.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("blob %s: %w", v.desc.Digest, err)
	}
	v.r, v.v, v.n = io.LimitReader(v.f, v.desc.Size), v.desc.Digest.Verifier(), 0
	return nil
}

// Close closes the file.
func (v *VerifiedReader) Close() error { return v.f.Close() }

// openRegular opens a file for reading, refusing anything but a regular file
// (after symlinks) without blocking: a FIFO planted as a blob would otherwise
// hang the open, a device give endless data.
func openRegular(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// VerifyBlob reads the blob d through, without holding it, and checks its
// size and digest.
func (r *Reader) VerifyBlob(d v1.Descriptor) error {
	v, err := r.OpenVerified(d)
	if err != nil {
		return err
	}
	defer v.Close()
	return v.Verify()
}
