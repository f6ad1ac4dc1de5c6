package compress

import (
	"bytes"
	"io"
	"math/rand"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// input is compressible but not trivial: several zstd frames and gzip blocks.
func input() []byte {
	r := rand.New(rand.NewSource(1))
	words := []string{"nix", "store", "layer", "oci", "image", "\x00\x01", "busybox", "lib"}
	var b bytes.Buffer
	for b.Len() < 3*ZstdFrameSize+12345 {
		b.WriteString(words[r.Intn(len(words))])
		if r.Intn(7) == 0 {
			b.WriteByte(byte(r.Intn(256)))
		}
	}
	return b.Bytes()
}

// produce writes data in uneven pieces, as a tar writer does.
func produce(data []byte, piece int) func(io.Writer) error {
	return func(w io.Writer) error {
		for len(data) > 0 {
			n := piece
			if n > len(data) {
				n = len(data)
			}
			if _, err := w.Write(data[:n]); err != nil {
				return err
			}
			data = data[n:]
			piece = piece*7%65521 + 1
		}
		return nil
	}
}

func decompress(t *testing.T, a Algorithm, blob []byte) []byte {
	t.Helper()
	r, err := NewReader(a, bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// One table for every reader: Docker's uncompressed layers included, unknown
// types refused naming what is read.
func TestFromMediaType(t *testing.T) {
	for mt, want := range map[string]Algorithm{
		"application/vnd.oci.image.layer.v1.tar+gzip":                  Gzip,
		"application/vnd.oci.image.layer.v1.tar+zstd":                  Zstd,
		"application/vnd.oci.image.layer.v1.tar":                       None,
		"application/vnd.docker.image.rootfs.diff.tar":                 None,
		"application/vnd.docker.image.rootfs.diff.tar.gzip":            Gzip,
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": Zstd,
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": Gzip,
		"application/vnd.oci.image.layer.nondistributable.v1.tar":      None,
	} {
		if got, err := FromMediaType(mt); err != nil || got != want {
			t.Errorf("%s: %v, %v", mt, got, err)
		}
	}
	if _, err := FromMediaType("application/x-tar+xz"); err == nil || !strings.Contains(err.Error(), "rootfs.diff.tar") {
		t.Errorf("unknown type: %v", err)
	}
}

// A zstd frame asking for a window past MaxZstdWindow is refused, not
// allocated.
func TestZstdWindowLimit(t *testing.T) {
	// A frame header asking for a 256 MiB window (exponent 18: 2^(10+18)),
	// then one raw last block holding "x".
	buf := bytes.NewReader([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 18 << 3, 0x09, 0x00, 0x00, 'x'})
	r, err := NewReader(Zstd, buf)
	if err == nil {
		_, err = io.ReadAll(r)
		r.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "window") {
		t.Errorf("got %v", err)
	}
}

// The blob is the same at any parallelism and write size, it decompresses to
// the input, and both digests and sizes are right.
func TestEncodeDeterministicAndCorrect(t *testing.T) {
	data := input()
	for _, a := range Algorithms {
		t.Run(string(a), func(t *testing.T) {
			var first []byte
			for i, cfg := range []struct{ workers, piece int }{{1, 512}, {2, 4096}, {4, 100000}, {8, 1}} {
				if cfg.piece == 1 && a != Zstd {
					continue // byte-sized writes are slow through gzip; zstd is the one that cuts frames itself
				}
				var buf bytes.Buffer
				res, err := EncodeWorkers(&buf, a, cfg.workers, produce(data, cfg.piece))
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = buf.Bytes()
					if got := decompress(t, a, first); !bytes.Equal(got, data) {
						t.Fatalf("decompressed %d bytes, want the %d input bytes", len(got), len(data))
					}
				} else if !bytes.Equal(buf.Bytes(), first) {
					t.Errorf("workers=%d piece=%d: blob differs from workers=1", cfg.workers, cfg.piece)
				}
				if res.DiffID != digest.FromBytes(data) || res.TarSize != int64(len(data)) {
					t.Errorf("diff_id %s size %d, want %s %d", res.DiffID, res.TarSize, digest.FromBytes(data), len(data))
				}
				if res.Digest != digest.FromBytes(buf.Bytes()) || res.Size != int64(buf.Len()) {
					t.Errorf("digest %s size %d do not match the blob", res.Digest, res.Size)
				}
				if res.MediaType != a.MediaType() {
					t.Errorf("media type %s", res.MediaType)
				}
			}
		})
	}
}

// The digests are pinned: a change of library version or setting that moves
// them must be deliberate (it changes every image's digests).
func TestEncodePinned(t *testing.T) {
	data := input()
	want := map[Algorithm]string{
		Gzip: "sha256:1654fe9712d1937df2bac338decb50f394736e0f2c2293ee8c6f6199894d83e1",
		Zstd: "sha256:ede267139cb9165c765443c1cd07227caf36c5a176d609f8829c61a3612fd07f",
		None: digest.FromBytes(data).String(),
	}
	for a, w := range want {
		res, err := EncodeWorkers(io.Discard, a, 2, produce(data, 32768))
		if err != nil {
			t.Fatal(err)
		}
		if res.Digest.String() != w {
			t.Errorf("%s: digest %s, want %s", a, res.Digest, w)
		}
	}
}

func TestParse(t *testing.T) {
	for _, s := range []string{"gzip", "zstd", "none"} {
		if _, err := Parse(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"", "GZIP", "xz", "bzip2"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, io.ErrClosedPipe
	}
	f.after--
	return len(p), nil
}

// A write error of the destination is reported, never a result.
func TestEncodeWriteError(t *testing.T) {
	data := input()
	for _, a := range Algorithms {
		if _, err := EncodeWorkers(&failWriter{after: 1}, a, 2, produce(data, 65536)); err == nil {
			t.Errorf("%s: no error from a failing destination", a)
		}
	}
}
